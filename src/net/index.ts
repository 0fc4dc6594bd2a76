// feedline link: the device's one TLS connection to the feedline server (docs/PROTOCOL.md).
//
// PUBLIC API (what sensors, actuators and the app use; nothing else in src/net is meant for them)
//
//   const link = await startLink()                 // config from settings; or startLink({ feedId: 7 }) to override
//   link.report("temp", 21.5)                      // queue a sample, stamped with server time (policy "every")
//   link.report("relay", 1, "latest")              // a state: only the newest queued value is kept
//   link.subscribe("datastreams/led", (body, resource) => { ... body.current_value ... }, sinceAt?)
//                                                  // relative to /feeds/<FEED_ID>/, or an absolute "/feeds/…"
//   link.state                                     // "offline"|"connecting"|"greeting"|"up"|"degraded"|"down"
//   link.onState((state, reason) => { ... })       // every transition, with its reason
//   link.stats()                                   // reconnects, lastDisconnect, rttMs, outbox, drops, uptimeS, reboots, …
//
// report(streamId, value, policy?) → boolean
//   streamId: 1-64 chars of A-Za-z0-9_.- ; value: string (≤ 32 chars), number (7 significant digits
//   on DeviceScript: scale if you need more) or boolean (1/0). Returns false (logged, counted in
//   stats().rejected) for an invalid id or value. Never blocks, never throws. Samples reported in one
//   run of the caller leave together in one batch (sent right after that run); each waits in a
//   bounded outbox (setting OUTBOX_BYTES) until the server acknowledged it. When the outbox is full the
//   oldest "every" sample is dropped and counted (stats().drops). Streams starting with "_" are the
//   link's own diagnostics.
// subscribe(resource, handler, sinceAt?) → void
//   handler(body, resource) runs for each change pushed by the server, in order, once: after a
//   reconnect the link subscribes again with since = the last `at` seen. A throwing handler is
//   counted (stats().handlerErrors), never fatal. Subscribe once per resource, at start-up. Replay
//   reaches back to the moment of the first subscription after boot, or to `sinceAt` when given (the
//   last `at` the app handled before a reboot, which it keeps itself: actuators do, docs/FIRMWARE.md "Reboots").
// stats() → LinkStats, one object refreshed by each call (copy the fields you keep).
//
// One link per device: the runtime has ONE socket, so nothing else may open one (fetch() or the MQTT
// client would kill the link's connection); a second startLink() throws E_LINK_STARTED.
// Everything runs in the background: one ticker (every TICK_MS) and one receive fiber (src/net/socket.ts).
import * as ds from "@devicescript/core"
import { flashWrites, saveSetting } from "../flash"
import { BOOTS_KEY, LinkConfig, REBOOTS_KEY, readLinkConfig } from "./config"
import { Link, TICK_MS } from "./link"
import { forgetOutbox, loadOutbox, saveOutbox } from "./outbox-store"
import { runAfter, runEvery } from "./fibers"
import { startNativeSocket } from "./socket"
import { claimIfNeeded } from "./claim"
import { spreadByDevice } from "../backoff"
import { logLine } from "../foundation/ports"

export { Link, LinkState, LinkStats, PushHandler } from "./link"
export { LinkConfig } from "./config"
export { Policy } from "./outbox"

let started = false

/**
 * Starts the link with the settings (overridden by `overrides`) and returns it at once (state "offline"),
 * or, on a fleet board without a key, once it has claimed one.
 */
export async function startLink(overrides?: Partial<LinkConfig>): Promise<Link> {
    if (started) throw new Error("E_LINK_STARTED: the device has one socket; start the link once and share it")
    started = true
    const cfg = await readLinkConfig()
    if (overrides) Object.assign(cfg, overrides)
    // one flash write per start: the fleet view's reboots (`_boots`). Awaited: a settings read of another
    // fiber meanwhile (the actuators' restore) could take this write's read-back answer for its own
    await saveSetting(BOOTS_KEY, cfg.boots)
    const sock = startNativeSocket()
    const port = cfg.tls ? -cfg.port : cfg.port // the runtime selects TLS by a negative port
    const link: Link = new Link(cfg, {
        // one connection at a time; its events go to the link
        // (methods read off their object come bound in DeviceScript)
        transport: { open: () => sock.connect(cfg.host, port, link), send: sock.send, close: sock.abandon },
        now: ds.millis,
        random: spreadByDevice(ds.deviceIdentifier("self"), Math.random),
        reboot: (n: number) => rebootNow.start(link, n),
        // from the link's tick, so not awaited; nothing else touches REBOOTS then: readLinkConfig read it before
        // link.start(), and rebootNow (its one other writer) comes REBOOT_MIN after the success that calls this
        healthy: () => saveReboots.start(0),
        flashWrites: flashWrites,
        defer: (fn: () => void) => runAfter.start(fn, 0),
        log: logLine,
    })
    let restored = await loadOutbox(link.outbox, ds.millis())
    if (restored) console.log(`link: ${restored} samples queued again from before the reboot`)
    link.start()
    const tick = () => {
        try {
            sock.poll()
            link.tick()
            if (restored && link.outbox.depth() === 0) {
                restored = 0 // sent: a later start must not load them again
                forgetOutbox.start()
            }
        } catch (e) {
            // a bug in the link must not stop the device: log it, the next tick tries again
            console.error(`link: E_INTERNAL ${e}`)
        }
    }
    runEvery.start(tick, TICK_MS)
    // [fleet] a board without a key claims one first, if it has a product id and code (src/net/claim.ts)
    if (!cfg.apiKey) await claimIfNeeded(link)
    // what the link uses: after a claim, the claimed feed (npm start follows the feed it names)
    console.log(`link: ${cfg.tls ? "tls" : "tcp"}://${cfg.host}:${cfg.port} feed ${cfg.feedId}, reboot after ${cfg.rebootMin} min (reboots so far ${cfg.reboots})`)
    return link
}

async function saveReboots(n: number) {
    await saveSetting(REBOOTS_KEY, n)
}

/** The last resort: the counter and the outbox to flash, then the chip reset (docs/FIRMWARE.md "Reboots"). */
async function rebootNow(link: Link, n: number) {
    await saveReboots(n)
    const saved = await saveOutbox(link.outbox, ds.millis())
    console.log(`link: saved ${saved} queued samples; rebooting (flash writes since boot: ${flashWrites()})`)
    ds.reboot()
}
