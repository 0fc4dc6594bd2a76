// Aedes, the Node.js MQTT broker (the same-runtime peer), in its own child process.
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { compiledEntry } from "../../server/compiled.ts"
import { spawnServer, stopChild, type StartTarget } from "./target.ts"

const START_TIMEOUT_MS = 20_000

function aedesVersion(): string {
    // aedes's "exports" hide package.json; it sits next to the main file
    const main = createRequire(import.meta.url).resolve("aedes")
    return JSON.parse(readFileSync(join(dirname(main), "package.json"), "utf8")).version
}

export const startAedes: StartTarget = async (ctx) => {
    const { child, stderrTail } = spawnServer(process.execPath, [compiledEntry("devs/bench/targets/aedes-main.ts"), ctx.tls.certPath, ctx.tls.keyPath])
    let port: number
    try {
        port = await new Promise<number>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no port announced within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
            let out = ""
            child.stdout!.on("data", (d: Buffer) => {
                out += d.toString()
                const m = /\{"port":(\d+)\}/.exec(out)
                if (m) {
                    clearTimeout(timer)
                    resolve(Number(m[1]))
                }
            })
            child.once("exit", (code) => reject(new Error(`exited with code ${code}`)))
        })
    } catch (e) {
        await stopChild(child)
        return { name: "aedes", skipped: `aedes did not start: ${(e as Error).message}\n${stderrTail()}` }
    }
    return {
        name: "aedes",
        pid: child.pid!,
        address: { kind: "mqtt", host: "127.0.0.1", port, caPath: ctx.tls.caPath, feedId: 1 },
        notes: [`aedes ${aedesVersion()} on Node ${process.version} (compiled JavaScript, as feedline), in-memory persistence, no auth`],
        stop: () => stopChild(child),
    }
}
