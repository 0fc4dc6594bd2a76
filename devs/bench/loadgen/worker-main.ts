// Entry of the load-generator child process. The orchestrator forks one per target, so the client's
// CPU never competes with the orchestrator's bookkeeping and is the same design for every target.
// Requests arrive over IPC as {id, op, args}; each gets one reply {id, ok, result | error}.
import { feedlineAdapter } from "./feedline-client.ts"
import { mqttAdapter } from "./mqtt-client.ts"
import { LoadGenerator } from "./phases.ts"
import type { TargetAddress } from "./types.ts"

export interface WorkerRequest {
    id: number
    op: "init" | "openDevices" | "openSubscribers" | "openQuiet" | "closedLoop" | "paced" | "noisy" | "counts" | "closeAll"
    args: any[]
}

let gen: LoadGenerator | undefined

async function handle(req: WorkerRequest): Promise<unknown> {
    if (req.op === "init") {
        const [address, serverPid] = req.args as [TargetAddress, number | number[]]
        const adapter = address.kind === "feedline" ? feedlineAdapter(address) : mqttAdapter(address)
        gen = new LoadGenerator(adapter, serverPid)
        return null
    }
    if (!gen) throw new Error("worker not initialised: send init first")
    switch (req.op) {
        case "openDevices":
            return gen.openDevices(req.args[0], req.args[1])
        case "openSubscribers":
            return gen.openSubscribers(req.args[0], req.args[1])
        case "closedLoop":
            return gen.closedLoop(req.args[0], req.args[1], req.args[2], req.args[3])
        case "paced":
            return gen.paced(req.args[0], req.args[1], req.args[2])
        case "openQuiet":
            return gen.openQuiet()
        case "noisy":
            return gen.noisy(req.args[0], req.args[1], req.args[2], req.args[3], req.args[4])
        case "counts":
            return gen.counts()
        case "closeAll":
            gen.closeAll()
            return null
    }
}

process.on("message", (req: WorkerRequest) => {
    handle(req).then(
        (result) => process.send!({ id: req.id, ok: true, result }),
        (e: Error) => process.send!({ id: req.id, ok: false, error: e.stack ?? e.message })
    )
})
process.on("disconnect", () => process.exit(0))
