// Host side of devs/bench/firmware/device/wire-bench.ts: a protocol v1 endpoint and an Aedes MQTT broker, both on
// TLS and counting raw TCP bytes (TLS records included) per connection.
import net from "node:net"
import tls from "node:tls"
import { readFileSync } from "node:fs"
import { Aedes } from "aedes"
import type { TlsFixture } from "../tls-fixture.ts"
import { DeviceEndpoint, type ConnBytes } from "./endpoint.ts"
import { runSimulator, simError, writeGeneratedConfig, type SimRun } from "./sim.ts"

export interface WireCase {
    case: string
    oursBytesPerUpdate: ConnBytes
    mqttBytesPerUpdate: ConnBytes
    /** the median over rounds */
    oursVmMsPerUpdate: number
    mqttVmMsPerUpdate: number
}

export interface WireResult {
    cases: WireCase[]
    run: Omit<SimRun, "output" | "lines">
    error?: string
}

/** An MQTT broker (Aedes) over TLS that counts each connection's raw TCP bytes. */
async function countingBroker(fx: TlsFixture, done: ConnBytes[]): Promise<{ port: number; close(): void }> {
    const broker = await Aedes.createBroker()
    const context = tls.createSecureContext({ cert: readFileSync(fx.certPath), key: readFileSync(fx.keyPath) })
    const srv = net.createServer((raw) => {
        const t = new tls.TLSSocket(raw, { isServer: true, secureContext: context })
        t.on("error", () => {})
        raw.on("close", () => done.push({ up: raw.bytesRead, down: raw.bytesWritten }))
        broker.handle(t as never)
    })
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve))
    return { port: (srv.address() as net.AddressInfo).port, close: () => (srv.close(), broker.close()) }
}

/** `rounds`: how often the device program times each path (bytes are counted in the first). */
export async function benchWire(fx: TlsFixture, updates: number, rounds: number, log: (l: string) => void): Promise<WireResult> {
    const oursConns: ConnBytes[] = []
    const mqttConns: ConnBytes[] = []
    const ours = new DeviceEndpoint(fx, { ack: true, onClose: (_at, bytes) => oursConns.push(bytes) })
    const mqtt = await countingBroker(fx, mqttConns)
    try {
        writeGeneratedConfig("fw-bench-config", "FW_BENCH", { host: "127.0.0.1", port: await ours.listen(), mqttPort: mqtt.port, updates, rounds })
        // updates go one at a time (~0.2 s each with the waits between them), 3 cases, both paths
        const run = await runSimulator("devs/bench/firmware/device/wire-bench.ts", { timeoutMs: 60_000 + rounds * updates * 3 * 500, caPath: fx.caPath })
        // connections close asynchronously after the program's last line
        await new Promise((r) => setTimeout(r, 300))
        const { output, lines, ...summary } = run
        if (!run.done) return { cases: [], run: summary, error: `the simulator run did not finish (exit ${run.code}): ${simError(output)}` }
        const cases: WireCase[] = []
        const names = [...new Set(lines.map((l) => String(l.case)))]
        const per = (conns: ConnBytes[], i: number): ConnBytes => {
            const empty = conns[2 * i]
            const full = conns[2 * i + 1]
            return { up: (full.up - empty.up) / updates, down: (full.down - empty.down) / updates }
        }
        // per round, the median chunk's time per update (the device program times chunks of updates)
        const vmRounds = (path: string, name: string) => lines.filter((x) => x.path === path && x.case === name && x.k === updates).map((x) => Number(x.medianMsPerUpdate))
        const median = (xs: number[]) => {
            const s = [...xs].sort((a, b) => a - b)
            return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN
        }
        const vm = (path: string, name: string) => median(vmRounds(path, name))
        names.forEach((name, i) => {
            cases.push({
                case: name,
                oursBytesPerUpdate: per(oursConns, i),
                mqttBytesPerUpdate: per(mqttConns, i),
                oursVmMsPerUpdate: vm("ours", name),
                mqttVmMsPerUpdate: vm("mqtt", name),
            })
        })
        const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`
        for (const c of cases) {
            const ours = c.oursBytesPerUpdate.up + c.oursBytesPerUpdate.down
            const peer = c.mqttBytesPerUpdate.up + c.mqttBytesPerUpdate.down
            const o = vmRounds("ours", c.case)
            const m = vmRounds("mqtt", c.case)
            const perRound = o.map((x, r) => ratio(x, m[r])).join(" ")
            log(`  firmware wire, ${c.case}: ${ours.toFixed(0)} B vs MQTT ${peer.toFixed(0)} B (${ratio(ours, peer)}); VM ${c.oursVmMsPerUpdate.toFixed(2)} ms vs MQTT ${c.mqttVmMsPerUpdate.toFixed(2)} ms per update (${ratio(c.oursVmMsPerUpdate, c.mqttVmMsPerUpdate)}; by round ${perRound})`)
        }
        return { cases, run: summary }
    } finally {
        await ours.close()
        mqtt.close()
    }
}
