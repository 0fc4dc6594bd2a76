// Prometheus text exposition (GET /metrics), hand-rolled: a few counters, gauges and one histogram.

type Labels = Record<string, string>

/** One label set of a family, resolved once: counting through it builds no label text (the request path's counters). */
export interface Counter {
    add(by?: number): void
}

function labelText(labels: Labels): string {
    const keys = Object.keys(labels)
    if (keys.length === 0) return ""
    return "{" + keys.map((k) => `${k}="${labels[k].replace(/["\\\n]/g, "_")}"`).join(",") + "}"
}

/** Label sets whose text a family remembers (a family has a handful: methods × statuses, transports). */
const MAX_REMEMBERED_LABEL_TEXTS = 1000

class Family {
    readonly values = new Map<string, number>()
    /** label text by its labels' plain concatenation: counted on every request, so the escaping is done once */
    private readonly texts = new Map<string, string>()
    constructor(
        readonly name: string,
        readonly help: string,
        readonly type: "counter" | "gauge",
    ) {}

    private textOf(labels: Labels): string {
        let raw = ""
        for (const k in labels) raw += k + "\u0000" + labels[k] + "\u0001"
        let text = this.texts.get(raw)
        if (text === undefined) {
            text = labelText(labels)
            if (this.texts.size < MAX_REMEMBERED_LABEL_TEXTS) this.texts.set(raw, text)
        }
        return text
    }

    add(labels: Labels = {}, by = 1): void {
        const k = this.textOf(labels)
        this.values.set(k, (this.values.get(k) ?? 0) + by)
    }

    /** The label set `labels` as a counter to keep: add() through it costs a map update and nothing else. */
    counter(labels: Labels = {}): Counter {
        const k = this.textOf(labels)
        const values = this.values
        return { add: (by = 1) => void values.set(k, (values.get(k) ?? 0) + by) }
    }

    set(labels: Labels, v: number): void {
        this.values.set(this.textOf(labels), v)
    }

    get(labels: Labels = {}): number {
        return this.values.get(this.textOf(labels)) ?? 0
    }

    render(): string {
        let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.type}\n`
        if (this.values.size === 0 && this.type === "counter") out += `${this.name} 0\n`
        for (const [k, v] of this.values) out += `${this.name}${k} ${v}\n`
        return out
    }
}

class Histogram {
    private readonly counts: number[]
    private sum = 0
    private count = 0
    constructor(
        readonly name: string,
        readonly help: string,
        private readonly bounds: number[],
    ) {
        this.counts = bounds.map(() => 0)
    }

    observe(v: number): void {
        this.sum += v
        this.count++
        for (let i = 0; i < this.bounds.length; ++i) if (v <= this.bounds[i]) this.counts[i]++
    }

    render(): string {
        let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`
        this.bounds.forEach((b, i) => (out += `${this.name}_bucket{le="${b}"} ${this.counts[i]}\n`))
        out += `${this.name}_bucket{le="+Inf"} ${this.count}\n${this.name}_sum ${this.sum}\n${this.name}_count ${this.count}\n`
        return out
    }
}

/** The shares of --max-connections-per-key feedline_keys_near_connection_limit counts keys at: half, nearly, at it. */
export const KEY_CONNECTION_SHARES: readonly number[] = [0.5, 0.9, 1]

export class Metrics {
    readonly connectionsTotal = new Family("feedline_connections_total", "Connections accepted, by transport.", "counter")
    readonly connectionsOpen = new Family("feedline_connections_open", "Connections open now, by transport.", "gauge")
    readonly requests = new Family("feedline_requests_total", "Requests answered, by method and status.", "counter")
    readonly pushes = new Family("feedline_pushes_total", "Subscription pushes sent.", "counter")
    readonly notices = new Family("feedline_notices_total", "Connection notices sent before closing, by status and code.", "counter")
    readonly queueDrops = new Family("feedline_queue_drops_total", "Connections dropped because their outgoing queue stayed full.", "counter")
    readonly handshakesDropped = new Family(
        "feedline_handshakes_dropped_total",
        "Pending TLS handshakes dropped, by the bound: address or total (to make room for a newer one), deadline (too slow).",
        "counter",
    )
    readonly proxyHeadersRefused = new Family(
        "feedline_proxy_headers_refused_total",
        "Connections closed for their PROXY header (--trusted-proxies), by code: E_PROXY_HEADER_MISSING, _BAD, _TIMEOUT from a trusted proxy, E_PROXY_UNTRUSTED from anyone else.",
        "counter",
    )
    readonly httpConnectionsOpen = new Family("feedline_http_connections_open", "App-port HTTP connections open now, not WebSockets (sampled at each scrape).", "gauge")
    readonly httpConnectionsRefused = new Family(
        "feedline_http_connections_refused_total",
        "App-port HTTP connections closed at their accept, over the HTTP connection bound: address or total.",
        "counter",
    )
    // connections per key: aggregates, never a series per key (keys are tenants: unbounded); which keys, GET /v2/sessions
    readonly keyConnectionsLimit = new Family("feedline_key_connections_limit", "Connections one (non-master) key may hold in this process: --max-connections-per-key.", "gauge")
    readonly keyConnectionsMost = new Family(
        "feedline_key_connections_most",
        "The most device-port and WebSocket connections any one key holds now, master keys not counted (sampled at each scrape).",
        "gauge",
    )
    readonly keysNearConnectionLimit = new Family(
        "feedline_keys_near_connection_limit",
        "Keys holding at least this share of --max-connections-per-key now, by share: 0.5, 0.9, 1 (at the limit: their next connection is refused 429 E_TOO_MANY_CONNECTIONS_FOR_KEY); sampled at each scrape.",
        "gauge",
    )
    readonly subscriptions = new Family("feedline_subscriptions", "Subscriptions live now.", "gauge")
    readonly fanoutBusy = new Family("feedline_fanout_busy_total", "Writes refused (429 E_FANOUT_BUSY) because their feed owed its subscribers too many pushes.", "counter")
    readonly claims = new Family("feedline_claims_total", "Device claims, by outcome: new, reissued-<why>, or the refusal's code.", "counter")
    readonly pushesHeld = new Family(
        "feedline_pushes_held_total",
        "Several processes: a feed's committed change held back until the change committed before it (another process's, published later) arrived, so its pushes go out in commit order.",
        "counter",
    )
    readonly pushOrderGaps = new Family(
        "feedline_push_order_gaps_total",
        "Several processes: a feed's change committed before others did not arrive in time (or too many waited for it); the feed was caught up from the store (feedline_catch_ups_total says how).",
        "counter",
    )
    readonly catchUps = new Family(
        "feedline_catch_ups_total",
        "Several processes: feeds whose changes this process may have missed (the link to the others broke, a publisher died before publishing, a gap), caught up from the store, by outcome: repaired (the missed changes pushed in commit order), deleted (the feed was: its subscribers got the deletion), told (a datastream deletion or too many changes to push: only that feed's subscribers here got 503 E_PUSHES_INTERRUPTED).",
        "counter",
    )
    readonly pushesCaughtUp = new Family("feedline_pushes_caught_up_total", "Several processes: changes read back from the store by catch-ups and pushed (each once per subscriber it reaches).", "counter")
    readonly pushesInterrupted = new Family(
        "feedline_pushes_interrupted_total",
        "Several processes: connections told 503 E_PUSHES_INTERRUPTED (reconnect, subscribe with after), by scope: feed (a feed they subscribe to could not be caught up), process (the store could not be read either: every subscriber here).",
        "counter",
    )
    readonly stampsAhead = new Family(
        "feedline_stamps_ahead_total",
        "Writes whose server stamp led this process's clock by more than 1 s: a feed taking more than one stamped write a millisecond, or another process's clock ahead.",
        "counter",
    )
    readonly stampLead = new Family("feedline_stamp_lead_seconds", "The most a server stamp led this process's clock since the previous scrape (0: none led it).", "gauge")
    readonly pushesOwed = new Family("feedline_pushes_owed", "Pushes queued for subscribers and not yet delivered, all feeds (sampled at each scrape).", "gauge")
    readonly tlsCertificateExpiry = new Family(
        "feedline_tls_certificate_expiration_timestamp_seconds",
        "When the TLS certificate both TLS ports serve now expires (its notAfter), in seconds since the epoch: alert when it is less than 14 days away.",
        "gauge",
    )
    readonly tlsReloads = new Family(
        "feedline_tls_reloads_total",
        "TLS certificate reloads (SIGHUP), by outcome: ok, or the code of the check the new files failed (the previous certificate is still served).",
        "counter",
    )
    readonly logLinesDropped = new Family(
        "feedline_log_lines_dropped_total",
        "Log lines dropped because the log's descriptor (stdout) failed to take them: a closed terminal, a pipe with no reader, a full disk.",
        "counter",
    )
    readonly datapoints = new Family("feedline_datapoints_written_total", "Datapoints committed that changed something.", "counter")
    readonly storeCommit = new Histogram(
        "feedline_store_commit_seconds",
        "Time to commit one batch of writes.",
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    )
    readonly storeQuery = new Histogram("feedline_store_query_seconds", "Time to answer one request that reads the store.", [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
    ])

    private readonly samplers: (() => void)[] = []
    /** requests' counters by method, then status, made at first use */
    private readonly requestCounters = new Map<string, Map<number, Counter>>()
    /** feedline_pushes_total, unlabelled */
    readonly pushesSent = this.pushes.counter()
    /** feedline_datapoints_written_total, unlabelled */
    readonly datapointsWritten = this.datapoints.counter()

    /** One request answered: the counter of its method and status (no label object per request). */
    requestAnswered(method: string, status: number): void {
        let byStatus = this.requestCounters.get(method)
        if (byStatus === undefined) this.requestCounters.set(method, (byStatus = new Map()))
        let c = byStatus.get(status)
        if (c === undefined) byStatus.set(status, (c = this.requests.counter({ method, status: String(status) })))
        c.add()
    }

    /** `fn` sets gauges that are read, not kept up to date (e.g. pushes owed), right before each render. */
    sampleOnRender(fn: () => void): void {
        this.samplers.push(fn)
    }

    render(): string {
        for (const sample of this.samplers) sample()
        return [
            this.connectionsTotal,
            this.connectionsOpen,
            this.requests,
            this.pushes,
            this.notices,
            this.queueDrops,
            this.handshakesDropped,
            this.proxyHeadersRefused,
            this.httpConnectionsOpen,
            this.httpConnectionsRefused,
            this.keyConnectionsLimit,
            this.keyConnectionsMost,
            this.keysNearConnectionLimit,
            this.subscriptions,
            this.fanoutBusy,
            this.pushesOwed,
            this.pushesHeld,
            this.pushOrderGaps,
            this.stampsAhead,
            this.stampLead,
            this.claims,
            this.tlsCertificateExpiry,
            this.tlsReloads,
            this.logLinesDropped,
            this.datapoints,
            this.storeCommit,
            this.storeQuery,
        ]
            .map((m) => m.render())
            .join("")
    }
}
