// The dashboard: feeds and their datastreams with current values, units and age; devices with link state
// and their `_` diagnostics; a live plot per numeric datastream with a history range, and text values
// (like a sensor's `temp.cfg.state` policy) as text with their last changes; a command box; the fleet of
// claimed devices (fleet.js) for a master key. Plain modules, no framework: the DOM is built with a few
// helpers and updated in place.
import { Auth } from "./auth.js"
import { retryAfterRefusalMs } from "./backoff.js"
import { PageConnection } from "./connection.js"
import { sendAgainAsIs } from "./resend.js"
import { FleetView } from "./fleet.js"
import { StreamPlot } from "./plots.js"
import { newestAt } from "./subscription-cursor.js"
import { unitOf } from "./units.js"

/** firmware convention (src/actuators/actuator.ts): a command datastream `x` is answered on `x.state` */
const STATE_SUFFIX = ".state"
/** a device whose feed has been silent this long is shown as stale (it reports diagnostics every minute or so) */
const STALE_AFTER_MS = 120 * 1000
/** history points per plot: ~one per pixel of a wide card; the server caps one request at 1000 */
const HISTORY_POINTS = 720
/** how often the page asks for its own /session (and so proves its token still works) */
const SESSION_POLL_MS = 15 * 1000
/** how often the page asks which devices are connected (GET /sessions: one request, well within the rate limit) */
const SESSIONS_POLL_MS = 5 * 1000
/** a request refused with 429 or 503 ("later", not "no") is tried this many times in all */
const MAX_ATTEMPTS = 5
/** how many command log lines to keep */
const LOG_LINES = 50
/** a text-valued datastream shows this many of its latest values */
const RECENT_VALUES = 5

const $ = (id) => document.getElementById(id)

/** el("div.card", {title: "x"}, child, "text") */
function el(spec, attrs = {}, ...children) {
    const [tag, ...classes] = spec.split(".")
    const e = document.createElement(tag)
    if (classes.length) e.className = classes.join(" ")
    for (const [k, v] of Object.entries(attrs)) {
        if (k === "dataset") Object.assign(e.dataset, v)
        else e.setAttribute(k, v)
    }
    for (const c of children) e.append(c)
    return e
}

function ageText(atMs, nowMs) {
    if (!atMs) return "never"
    const s = Math.max(0, Math.round((nowMs - atMs) / 1000))
    if (s < 60) return `${s} s ago`
    if (s < 3600) return `${Math.floor(s / 60)} min ago`
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`
    return `${Math.floor(s / 86400)} d ago`
}

const auth = new Auth()
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`
const conn = new PageConnection(wsUrl, () => auth.credential())

/** feedId -> { id, title, streams: Map<dsId, stream>, section, grid, device } */
const feeds = new Map()
let rangeSec = Number($("range").value)
/** open command: { feed, id, value, sentMs } awaiting the device's `.state` */
let awaiting = []
/** may this key list sessions (GET /sessions)? undefined until asked; false after a refusal */
let sessionsSupported
/** when GET /sessions was last asked (Date.now() ms) */
let sessionsAskedMs = 0

function status(text) {
    $("status").textContent = text
}

// ---- sign-in ------------------------------------------------------------------------------------

function showSignIn(message) {
    $("main").hidden = true
    $("sign-out").hidden = true
    $("sign-in").hidden = false
    $("sign-in-error").textContent = message || ""
    $("token-state").textContent = ""
    conn.stop()
}

function showMain() {
    $("sign-in").hidden = true
    $("main").hidden = false
    $("sign-out").hidden = false
    if (conn.stopped) conn.start()
}

$("sign-in-form").addEventListener("submit", async (ev) => {
    ev.preventDefault()
    const input = $("api-key")
    try {
        await auth.signIn(input.value.trim())
        input.value = "" // the key is not kept
        showMain()
    } catch (e) {
        $("sign-in-error").textContent = e.message
    }
})

$("sign-out").addEventListener("click", () => auth.signOut().then(() => showSignIn("Signed out.")))
auth.addEventListener("expired", (e) => showSignIn(`Please sign in again: ${e.detail}`))
auth.addEventListener("renewed", () => conn.resubscribeAll())
conn.addEventListener("unauthorized", (e) => {
    const b = e.detail.body || {}
    auth.expire(b.errors || "the server refused the token")
})

function showTokenState() {
    if (!auth.signedIn) return
    const left = auth.expiresMs - Date.now()
    $("token-state").textContent = left > 0 ? `token valid ${Math.floor(left / 3600000)} h ${Math.floor((left % 3600000) / 60000)} min` : "token expired"
}
setInterval(showTokenState, 1000)
auth.addEventListener("change", showTokenState)

// ---- link ---------------------------------------------------------------------------------------

conn.addEventListener("state", (e) => {
    const pill = $("link-state")
    pill.textContent = e.detail
    pill.className = `pill ${e.detail}`
})

conn.addEventListener("welcome", (e) => {
    $("session").textContent = `session ${e.detail.session}`
    loadAll().catch((err) => status(`loading failed: ${err.message}`))
})

conn.addEventListener("notice", (e) => status(`server notice ${e.detail.status}: ${(e.detail.body && e.detail.body.errors) || ""}`))
// [P§8] the server's seqs went back (its store restored or moved): the page catches up on what that history got
conn.addEventListener("rewound", (e) => status(`${e.detail.resource}: the server's history went back (seq ${e.detail.fromSeq} to ${e.detail.seq}); catching up`))

/**
 * A request over the connection, answered with any status. A 429 or 503 says "not now, nothing was done": a
 * big fleet's history can exceed the per-connection request rate, and a write to a feed that owes its
 * subscribers too many pushes is refused (429 E_FANOUT_BUSY). Such an answer is sent again after the
 * server's retry_after_ms and a spread (`onWait` is told), up to MAX_ATTEMPTS in all; the last answer is returned.
 * Not a 503 after which a write may be stored (/resend.js): the page's values have no `at`, and were stored twice.
 */
async function requestRetrying(method, resource, o = {}, onWait = () => {}) {
    for (let attempt = 1; ; attempt++) {
        const r = await conn.request(method, resource, o)
        if (sendAgainAsIs(r.status, r.body && r.body.code) && attempt < MAX_ATTEMPTS) {
            // the hint (else 1 s) and a random spread, as a board waits (/backoff.js): pages told at once come back apart
            const waitMs = retryAfterRefusalMs((r.body && r.body.retry_after_ms) || 0, Math.random())
            onWait(r, waitMs)
            await new Promise((done) => setTimeout(done, waitMs))
            continue
        }
        return r
    }
}

/** GET over the connection; an error status throws with the server's reason. */
async function get(resource, params) {
    const r = await requestRetrying("get", resource, { params })
    if (r.status >= 400) throw new Error(`${r.status} ${resource}: ${(r.body && r.body.errors) || ""}`)
    return r.body
}

async function loadAll() {
    const list = []
    for (let page = 1; ; page++) {
        const b = await get("/feeds", { page })
        list.push(...b.results)
        if (!b.results.length || list.length >= b.totalResults) break
    }
    for (const f of list) await loadFeed(f)
    status(list.length ? "" : "No feeds visible to this key yet.")
    refreshSessions()
    refreshOwnSession()
    fleet.allowed = undefined // another sign-in may see the fleet, or not
    fleet.refresh()
}

/** feed ids being loaded (a claimed device's feed can be announced twice before it is shown) */
const loadingFeeds = new Set()

/** Shows one feed: its datastreams, live pushes, history, device card. */
async function loadFeed(f) {
    const feed = feeds.get(f.id) || addFeed(f)
    const full = await get(`/feeds/${f.id}`)
    for (const d of full.datastreams || []) upsertStream(feed, d, false)
    // replay after the newest value shown; from then on the subscription's cursor follows the pushes
    conn.subscribe(`/feeds/${f.id}`, newestAt({ datastreams: [...feed.streams.values()] }), (push) => onPush(feed, push))
    await loadHistory(feed)
    renderDevice(feed)
}

/** [fleet] A device listed in the fleet view: a board that just claimed has a feed this page has not shown yet. */
function fleetDevice(d) {
    if (feeds.has(d.feed) || loadingFeeds.has(d.feed)) return
    loadingFeeds.add(d.feed)
    get(`/feeds/${d.feed}`)
        .then((f) => loadFeed(f))
        .catch((e) => status(`loading feed ${d.feed} failed: ${e.message}`))
        .finally(() => loadingFeeds.delete(d.feed))
}

const fleet = new FleetView({ section: $("fleet"), body: $("fleet-list"), state: $("fleet-state") }, (method, resource, o) => conn.request(method, resource, o), fleetDevice, el)

// ---- feeds and datastreams ----------------------------------------------------------------------

function addFeed(f) {
    const grid = el("div.cards")
    const section = el("section.feed", { dataset: { feed: String(f.id) } }, el("div.feed-title", {}, el("h2", {}, f.title || `Feed ${f.id}`), el("span.muted", {}, `/feeds/${f.id}`)), grid)
    $("feeds").append(section)
    const device = el("div.card.device", { dataset: { feed: String(f.id) } })
    $("device-list").append(device)
    const feed = { id: f.id, title: f.title || `Feed ${f.id}`, streams: new Map(), section, grid, device, sessions: [] }
    feeds.set(f.id, feed)
    $("command-feed").append(el("option", { value: String(f.id) }, feed.title))
    return feed
}

/** Creates or updates a datastream from a Xively datastream body {id, current_value, at, unit?}. */
function upsertStream(feed, d, live) {
    let s = feed.streams.get(d.id)
    if (d.deleted) return s && removeStream(feed, s)
    if (!s) {
        s = { id: d.id, value: undefined, at: undefined, atMs: 0, unit: unitOf(d) }
        feed.streams.set(d.id, s)
        if (!d.id.startsWith("_")) {
            s.valueEl = el("span.value", {}, "–")
            s.ageEl = el("span.age.muted")
            s.plotEl = el("div.plot", { dataset: { stream: d.id } })
            s.recentEl = el("ol.recent", { hidden: "" })
            s.recent = []
            s.card = el(
                "div.card.stream",
                { dataset: { feed: String(feed.id), stream: d.id } },
                el("header", {}, el("h3", {}, d.id), el("span.spacer"), s.ageEl),
                el("div", {}, s.valueEl, el("span.unit", {}, s.unit)),
                s.plotEl,
                s.recentEl
            )
            insertSorted(feed.grid, s.card, d.id)
            s.plot = new StreamPlot(s.plotEl, d.id)
            if (live) loadStreamHistory(feed, s).catch((e) => status(`history of ${d.id} failed: ${e.message}`))
            refreshCommandChoices()
        }
    }
    if (d.current_value !== undefined && (!s.at || !d.at || d.at >= s.at)) {
        s.value = d.current_value
        s.at = d.at
        s.atMs = d.at ? Date.parse(d.at) : Date.now()
        if (s.valueEl) s.valueEl.textContent = s.value
        if (s.ageEl) s.ageEl.textContent = ageText(s.atMs, Date.now())
    }
    if (live && s.plot && d.at) s.plot.add(d.at, d.current_value)
    if (live && s.recent && d.at && d.current_value !== undefined) {
        s.recent = [{ at: d.at, value: d.current_value }, ...s.recent.filter((p) => p.at !== d.at)].sort((a, b) => (a.at < b.at ? 1 : -1)).slice(0, RECENT_VALUES)
    }
    if (s.card) showValueKind(s)
    return s
}

/** A value that is not a number (a policy text, a state name) is shown as text, not as a gap in a plot. */
function isTextValue(v) {
    return v !== undefined && v !== null && String(v).trim() !== "" && !Number.isFinite(Number(v))
}

/** A text-valued datastream's card: the value as text and its latest changes instead of a plot. */
function showValueKind(s) {
    const text = isTextValue(s.value)
    s.card.classList.toggle("text", text)
    s.card.dataset.kind = text ? "text" : "number"
    s.plotEl.hidden = text
    s.recentEl.hidden = !text
    if (!text) return
    const now = Date.now()
    s.recentEl.replaceChildren(...s.recent.map((p) => el("li", {}, el("span", {}, String(p.value)), el("span", {}, ageText(Date.parse(p.at), now)))))
}

function insertSorted(parent, child, key) {
    const after = [...parent.children].find((c) => c.dataset.stream > key)
    parent.insertBefore(child, after || null)
}

function removeStream(feed, s) {
    feed.streams.delete(s.id)
    if (s.plot) s.plot.destroy()
    if (s.card) s.card.remove()
    refreshCommandChoices()
}

function onPush(feed, push) {
    if (push.status !== 200 || !push.body) return // the subscription's acknowledgement has no body
    const b = push.body
    const items = Array.isArray(b.datastreams) ? b.datastreams : [b]
    for (const d of items) {
        if (!d.id) continue
        upsertStream(feed, d, true)
        if (d.id.endsWith(STATE_SUFFIX)) commandAnswered(feed, d)
    }
    renderDevice(feed)
    refreshSessionsSoon(feed)
}

// ---- history ------------------------------------------------------------------------------------

/** Xively's duration/interval for a window: at most HISTORY_POINTS points, one per interval. */
export function historyParams(windowSec) {
    const minutes = windowSec % 3600 === 0 ? null : windowSec / 60
    const duration = minutes === null ? `${windowSec / 3600}hours` : `${minutes}minutes`
    return { duration, interval: Math.max(1, Math.ceil(windowSec / HISTORY_POINTS)), limit: 1000 }
}

async function loadStreamHistory(feed, s) {
    const b = await get(`/feeds/${feed.id}/datastreams/${s.id}/datapoints`, historyParams(rangeSec))
    s.plot.setHistory(b.datapoints || [], rangeSec)
    // the read may predate a push that came while it was on its way: keep what the pushes added (the list was
    // replaced, and a text stream's newest change vanished from it when the history answered last)
    const byAt = new Map([...(b.datapoints || []).slice(-RECENT_VALUES), ...s.recent].map((p) => [p.at, p]))
    s.recent = [...byAt.values()].sort((x, y) => (x.at < y.at ? 1 : -1)).slice(0, RECENT_VALUES)
    showValueKind(s)
}

async function loadHistory(feed) {
    const started = performance.now()
    await Promise.all([...feed.streams.values()].filter((s) => s.plot).map((s) => loadStreamHistory(feed, s)))
    $("history-state").textContent = `history loaded in ${Math.round(performance.now() - started)} ms`
}

$("range").addEventListener("change", () => {
    rangeSec = Number($("range").value)
    Promise.all([...feeds.values()].map(loadHistory)).catch((e) => status(`history failed: ${e.message}`))
})

// ---- devices ------------------------------------------------------------------------------------

const DIAGNOSTICS = [
    ["_state", "link state"],
    ["_reconnects", "reconnects"],
    ["_rtt_ms", "round trip"],
    ["_outbox", "outbox depth"],
    ["_drops", "dropped samples"],
    ["_disconnect", "last disconnect"],
    ["_uptime_s", "uptime"],
    ["_reboots", "reboots"],
]

/**
 * Connected sessions per feed, from every page of GET /sessions: those whose key is scoped to the feed,
 * not this page's own. Sessions of all-feed keys ("*": admins, tools) belong to no feed in particular.
 */
async function refreshSessions() {
    if (sessionsSupported === false || conn.state !== "online") return
    sessionsAskedMs = Date.now()
    const list = []
    // each page from where the one before ended (`next`): a page then costs the server that page alone
    let after
    for (let page = 1; ; page++) {
        const r = await conn.request("get", "/sessions", { params: after === undefined ? { page } : { after } }).catch(() => undefined)
        if (!r) return
        if (r.status === 403) {
            sessionsSupported = false // a key without read: the panel falls back to the age of the last report
            return
        }
        if (r.status !== 200 || !r.body) return
        list.push(...r.body.sessions)
        if (!r.body.sessions.length || typeof r.body.next !== "string") break
        after = r.body.next
    }
    sessionsSupported = true
    const own = conn.welcome && conn.welcome.session
    const others = list.filter((s) => s.id !== own && Array.isArray(s.feeds))
    for (const feed of feeds.values()) {
        feed.sessions = others.filter((s) => s.feeds.includes(feed.id))
        renderDevice(feed)
    }
}

/** devices speak on the device port; WebSocket sessions on a feed are apps (other dashboards, tools) */
const isDevice = (session) => session.transport === "tls" || session.transport === "tcp"

let sessionsSoon
/** A feed shown without a device reported: its device has probably just connected; ask soon (at most once a second). */
function refreshSessionsSoon(feed) {
    if (!sessionsSupported || sessionsSoon || feed.sessions.some(isDevice)) return
    sessionsSoon = setTimeout(() => {
        sessionsSoon = undefined
        refreshSessions()
    }, Math.max(0, sessionsAskedMs + 1000 - Date.now()))
}

function lastHeardMs(feed) {
    let best = 0
    for (const s of feed.streams.values()) best = Math.max(best, s.atMs || 0)
    return best
}

function renderDevice(feed) {
    const now = Date.now()
    const heard = lastHeardMs(feed)
    const devices = feed.sessions.filter(isDevice)
    const device = devices[devices.length - 1] // the newest: the server lists sessions in connection order
    const apps = feed.sessions.length - devices.length
    // with the server's session list the state is a fact; without it, only the age of the last report
    const recent = heard && now - heard < STALE_AFTER_MS
    // the device's own `_state`: connected, but it has heard nothing from the server for longer than `faulty`
    const linkState = feed.streams.get("_state")?.value
    const [state, label, why] = device
        ? linkState === "degraded"
          ? ["degraded", "degraded", "connected, but the device reports a silent link (its _state)"]
          : ["online", devices.length > 1 ? `connected ×${devices.length}` : "connected", "connected to the server now"]
        : sessionsSupported === true
          ? ["offline", "not connected", "no connection from this feed's device"]
          : recent
            ? ["online", "reporting", "reported within the last 2 minutes"]
            : ["stale", "quiet", "no report for 2 minutes or more"]
    const rows = []
    if (device) {
        rows.push(["connected since", `${new Date(device.since).toLocaleString()} (${ageText(Date.parse(device.since), now).replace(" ago", "")})`])
        rows.push(["link", `${device.transport} from ${device.remote_address}`])
        rows.push(["key", device.key_label || device.key_id || ""])
        rows.push(["requests / pushes", `${device.requests} / ${device.pushes}`])
    }
    if (apps) rows.push(["apps connected", String(apps)])
    rows.push(["last heard", ageText(heard, now)])
    for (const [id, label] of DIAGNOSTICS) {
        const s = feed.streams.get(id)
        if (s && s.value !== undefined) rows.push([label, `${s.value}${s.unit ? " " + s.unit : ""}`])
    }
    const table = el("table.kv", {}, ...rows.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v))))
    feed.device.replaceChildren(
        el("header", {}, el("h3", {}, feed.title), el("span.spacer"), el(`span.pill.${state}`, { title: why }, label)),
        table
    )
    feed.device.dataset.state = label
}

// ---- commands -----------------------------------------------------------------------------------

/** The datastream suggestions are those of the chosen feed, without diagnostics and `.state` reports. */
function refreshCommandChoices() {
    const feed = feeds.get(Number($("command-feed").value))
    const ids = feed ? [...feed.streams.keys()].filter((id) => !id.startsWith("_") && !id.endsWith(STATE_SUFFIX)).sort() : []
    $("command-datastreams").replaceChildren(...ids.map((id) => el("option", { value: id })))
}
$("command-feed").addEventListener("change", refreshCommandChoices)

function log(text, cls) {
    const list = $("command-log")
    list.prepend(el(`li${cls ? "." + cls : ""}`, {}, `${new Date().toLocaleTimeString()}  ${text}`))
    while (list.children.length > LOG_LINES) list.lastChild.remove()
}

$("command-form").addEventListener("submit", async (ev) => {
    ev.preventDefault()
    const feed = Number($("command-feed").value)
    const id = $("command-datastream").value.trim()
    const value = $("command-value").value.trim()
    const started = performance.now()
    try {
        const busy = (r, waitMs) => log(`${id} = ${value} not stored yet (${r.status} ${(r.body && r.body.code) || ""}); sending it again in ${waitMs} ms`)
        const r = await requestRetrying("put", `/feeds/${feed}/datastreams/${id}`, { body: { current_value: value } }, busy)
        const ms = Math.round(performance.now() - started)
        if (r.status === 429 || r.status === 503) return log(`${id} = ${value} not stored: the server stayed busy (${r.status} ${(r.body && r.body.code) || ""}); send it again`, "bad")
        if (r.status >= 400) return log(`${id} = ${value} refused: ${r.status} ${(r.body && r.body.errors) || ""}`, "bad")
        log(`${id} = ${value} stored (${r.status}, ${ms} ms); waiting for the device's ${id}${STATE_SUFFIX}`, "ok")
        awaiting = awaiting.filter((a) => !(a.feed === feed && a.id === id))
        awaiting.push({ feed, id, value, sentMs: performance.now() })
    } catch (e) {
        log(`${id} = ${value} not sent: ${e.message}`, "bad")
    }
})

function commandAnswered(feed, d) {
    const id = d.id.slice(0, -STATE_SUFFIX.length)
    const a = awaiting.find((x) => x.feed === feed.id && x.id === id)
    if (!a) return
    awaiting = awaiting.filter((x) => x !== a)
    const ms = Math.round(performance.now() - a.sentMs)
    const same = String(d.current_value) === String(a.value)
    log(`device reports ${d.id} = ${d.current_value} after ${ms} ms${same ? "" : ` (asked for ${a.value})`}`, same ? "ok" : "bad")
}

// ---- ages tick ----------------------------------------------------------------------------------

setInterval(() => {
    const now = Date.now()
    for (const feed of feeds.values()) {
        for (const s of feed.streams.values()) {
            if (s.ageEl) s.ageEl.textContent = ageText(s.atMs, now)
            if (s.card && s.card.dataset.kind === "text") showValueKind(s)
        }
        renderDevice(feed)
    }
}, 1000)
setInterval(refreshSessions, SESSIONS_POLL_MS)

/**
 * This page's own connection as the server sees it (GET /session). Also a regular authenticated request:
 * the server verifies the token on each one, so a revoked key signs the page out even when nothing is pushed.
 */
async function refreshOwnSession() {
    if (conn.state !== "online" && conn.state !== "degraded") return
    const r = await conn.request("get", "/session").catch(() => undefined)
    if (!r || r.status !== 200 || !r.body) return
    const b = r.body
    $("session").textContent = `session ${b.id} · since ${new Date(b.since).toLocaleTimeString()} · ${b.requests} requests · ${b.pushes} pushes`
}
setInterval(refreshOwnSession, SESSION_POLL_MS)

// ---- start --------------------------------------------------------------------------------------

if (auth.signedIn) {
    showMain()
    showTokenState()
} else showSignIn()
