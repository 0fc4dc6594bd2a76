// A stand-in for `feedline serve --workers 2` for test/host/server/workers-handoff.test.ts: the primary is
// the real one (devs/server/workers.ts, runPrimary); the workers are plain TCP servers that answer each
// connection with their pid. The first worker, once it listens and has told the primary, stops reading its
// channel (blocked, as a worker stuck in a long computation just before a crash) until the file named by
// FEEDLINE_TEST_RELEASE exists, then exits 1 without reading on: whatever the primary handed it meanwhile
// is never answered.
import cluster from "node:cluster"
import { existsSync } from "node:fs"
import net from "node:net"
import { isWorker, reportReady, runPrimary } from "../../../devs/server/workers.ts"

/** how long the stuck worker sleeps between looks at the release file (its thread is blocked, not spinning) */
const STUCK_POLL_MS = 20

if (!isWorker) {
    const code = await runPrimary({
        count: 2,
        log: (message) => process.stderr.write(`primary: ${message}\n`),
        onReady: (ready, pids) => process.stdout.write(JSON.stringify({ port: ready.devicePort, pids }) + "\n"),
    })
    process.exit(code)
} else {
    const server = net.createServer((socket) => socket.end(`${process.pid}\n`))
    server.listen(0, "127.0.0.1", () => {
        reportReady({ devicePort: (server.address() as net.AddressInfo).port, appPort: 0, appScheme: "tcp", caCertPath: "" })
        if (cluster.worker?.id !== 1) return
        const release = process.env.FEEDLINE_TEST_RELEASE!
        setImmediate(() => {
            const blocked = new Int32Array(new SharedArrayBuffer(4))
            while (!existsSync(release)) Atomics.wait(blocked, 0, 0, STUCK_POLL_MS)
            process.exit(1)
        })
    })
    process.on("SIGTERM", () => server.close(() => process.exit(0)))
}
