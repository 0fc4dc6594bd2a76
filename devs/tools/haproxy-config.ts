// The HAProxy configuration for several feedline processes behind one address (docs/OPERATIONS.md "Several
// machines behind HAProxy"): TCP mode, so TLS passes through to feedline (devices check feedline's certificate,
// and HAProxy needs no key), health checks on each process's GET /healthz, and the least loaded process
// for each new connection; optionally the PROXY protocol, so the processes see the clients' addresses. The failover test (test/e2e/failover.test.ts) runs HAProxy with exactly
// this, and OPERATIONS.md's example is this function's output (test/host/tools/haproxy-config.test.ts).

export interface HaproxyBackend {
    name: string
    host: string
    devicePort: number
    appPort: number
}

export interface HaproxyOptions {
    /** where HAProxy listens: "ADDR:PORT" or ":PORT" */
    bindDevices: string
    bindApp: string
    backends: HaproxyBackend[]
    /** the processes' app ports speak TLS (the default off loopback): the health checks do too */
    appTls: boolean
    /** how often each process is checked; two failed checks mark it down, two good ones up again */
    checkIntervalMs?: number
    /** connections HAProxy holds at most (each device is one); HAProxy raises its descriptor limit to fit */
    maxConnections?: number
    /**
     * [PROXY protocol] HAProxy starts each connection to a process with a v2 PROXY header carrying the
     * client's address and port (`send-proxy-v2`), and its health checks with a v2 LOCAL header
     * (`check-send-proxy`): for processes started with `--trusted-proxies <HAProxy's addresses>`, which
     * then see every client's own address (limits, claims, logs, /v2/sessions) instead of HAProxy's.
     */
    proxyProtocol?: boolean
}

/**
 * A dead process's port refuses at once; a hung one is given this long. Then HAProxy tries again, on
 * another process (`option redispatch 1`), so a device's connect succeeds while the health checks
 * have not yet marked the dead process down.
 */
const CONNECT_TIMEOUT_MS = 2000
/**
 * Idle connections are feedline's to end (its keep-alive contract: 60 s with the `field` profile, or
 * --timeout-ms): HAProxy's own idle timeout sits above any of it.
 */
const IDLE_TIMEOUT_S = 300
const CHECK_INTERVAL_MS = 1000
/**
 * A health check's answer may take this long: without it HAProxy allows only the check interval, and a
 * process whose event loop stalls for two intervals (GC, a commit's fsync, a burst of TLS handshakes
 * after a failover, a loaded machine) is marked down and all its device connections are cut
 * (`on-marked-down shutdown-sessions`). A dead process still refuses the check at once.
 */
const CHECK_TIMEOUT_MS = 2000
/** a fleet of devices per HAProxy (about 2 descriptors each: the device's and the one to feedline) */
const MAX_CONNECTIONS = 200_000

export function haproxyConfig(o: HaproxyOptions): string {
    const inter = o.checkIntervalMs ?? CHECK_INTERVAL_MS
    // the checks go to the app port, which expects the header from HAProxy too: they send a LOCAL one
    const proxy = o.proxyProtocol ? " send-proxy-v2 check-send-proxy" : ""
    const check = (b: HaproxyBackend) => `check port ${b.appPort}${o.appTls ? " check-ssl verify none" : ""}${proxy}`
    const backend = (name: string, port: (b: HaproxyBackend) => number, cutOnDown: boolean) =>
        [
            `backend ${name}`,
            "    balance leastconn",
            "    option httpchk",
            "    http-check send meth GET uri /healthz",
            "    http-check expect status 200",
            // devices: a process marked down loses its connections at once (they reconnect to the others).
            // Not the app port's: that also cuts a request HAProxy is connecting to the process at that moment,
            // which it would otherwise retry on another (retries, redispatch), and an HTTP client does not resend
            `    default-server inter ${inter}ms fall 2 rise 2${cutOnDown ? " on-marked-down shutdown-sessions" : ""}`,
            ...o.backends.map((b) => `    server ${b.name} ${b.host}:${port(b)} ${check(b)}`),
        ].join("\n")
    return (
        [
            "global",
            `    maxconn ${o.maxConnections ?? MAX_CONNECTIONS}`,
            "",
            "defaults",
            "    mode tcp",
            `    timeout connect ${CONNECT_TIMEOUT_MS}ms`,
            `    timeout client ${IDLE_TIMEOUT_S}s`,
            `    timeout server ${IDLE_TIMEOUT_S}s`,
            "    timeout client-fin 5s",
            `    timeout check ${CHECK_TIMEOUT_MS}ms`,
            "    retries 2",
            "    option redispatch 1",
            "",
            "frontend devices",
            `    bind ${o.bindDevices}`,
            "    default_backend feedline_devices",
            "",
            "frontend app",
            `    bind ${o.bindApp}`,
            "    default_backend feedline_app",
            "",
            backend("feedline_devices", (b) => b.devicePort, true),
            "",
            backend("feedline_app", (b) => b.appPort, false),
        ].join("\n") + "\n"
    )
}
