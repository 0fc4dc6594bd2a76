// Firmware link benchmark, run in the DeviceScript simulator by devs/bench/firmware/link-bench.ts: the real
// link (src/net) against a host endpoint that the host takes down, brings back or black-holes.
//   mode "recovery": one sample every FW_LINK.sampleMs; the host times outages and black holes
//   mode "outbox":   the endpoint never acknowledges; samples pile up until the 64 KB heap is full
//                    (the program then panics with OutOfMemory; the last count printed is the answer)
import * as ds from "@devicescript/core"
import { startLink } from "../../../../src/net"
import { FW_LINK } from "../../results/tmp/fw-link-config"

/** report() in bursts of this many, then yield: the VM panics after ~128K steps without yielding */
const BURST = 8

async function main() {
    const link = await startLink({
        host: FW_LINK.host,
        port: FW_LINK.port,
        tls: true,
        feedId: 1,
        apiKey: "bench-key",
        outboxBytes: FW_LINK.outboxBytes,
    })
    link.onState((state, reason) => console.log("FWBENCH " + JSON.stringify({ state: state, reason: reason })))
    if (FW_LINK.mode === "outbox") {
        while (link.state !== "up") await ds.sleep(50)
        let n = 0
        for (;;) {
            for (let i = 0; i < BURST; ++i) link.report("temp", 20 + (n++ % 100) / 10)
            if (n % FW_LINK.printEvery === 0) {
                const st = link.stats()
                console.log("FWBENCH " + JSON.stringify({ queued: st.outbox, bytes: st.outboxBytes, drops: st.drops }))
            }
            await ds.sleep(0)
        }
    }
    let v = 0
    setInterval(() => {
        link.report("temp", 20 + (v++ % 100) / 10)
    }, FW_LINK.sampleMs)
}

main.start()
