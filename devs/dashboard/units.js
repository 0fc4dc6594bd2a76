// Units for datastreams. The server stores none yet, so a datastream's own `unit` (Xively's
// {"symbol","label"} or a string) wins, and otherwise the firmware's known ids give one
// (src/foundation/config.ts SENSORS/THERMOSTAT, src/net/link.ts diagnostics).
// a Map, not an object: a datastream named constructor, toString or __proto__ (ids allow them) found Object's own
// members there and showed "function Object() { [native code] }" as its unit
const KNOWN = new Map([
    ["temp", "°C"],
    ["humidity", "%RH"],
    ["pressure", "hPa"],
    ["gas", "Ω"],
    ["light", "%"],
    ["soil", "%"],
    ["rssi", "dBm"],
    ["setpoint", "°C"],
    ["_rtt_ms", "ms"],
    ["_uptime_s", "s"],
    ["_outbox", "queued"],
])

export function unitOf(ds) {
    const u = ds.unit
    if (typeof u === "string") return u
    if (u && typeof u === "object") return u.symbol || u.label || ""
    return KNOWN.get(String(ds.id)) || KNOWN.get(String(ds.id).replace(/\.state$/, "")) || ""
}
