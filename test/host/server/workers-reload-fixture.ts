// A stand-in for `feedline serve --workers 2` for test/host/server/workers-reload.test.ts: the primary is the
// real one (devs/server/workers.ts, runPrimary); the workers are plain TCP servers. A worker takes SIGHUP only
// once it is ready, as a real one that is still loading its modules does not yet (Node's default for the signal
// ends it): every worker after the first holds its start until the file FEEDLINE_TEST_RELEASE-<its cluster id>
// exists. A worker says on stderr when it starts ("worker <pid> starting, cluster id <id>", before anything else) and each time
// it takes SIGHUP ("worker <pid> reloaded").
import cluster from "node:cluster"
import { existsSync } from "node:fs"
import net from "node:net"
import { isWorker, reportReady, runPrimary } from "../../../devs/server/workers.ts"

/** how often a held worker looks for its release file */
const HOLD_POLL_MS = 20

if (!isWorker) {
    const code = await runPrimary({
        count: 2,
        log: (message) => process.stderr.write(`primary: ${message}\n`),
        onReady: (_ready, pids) => process.stdout.write(JSON.stringify({ pids }) + "\n"),
    })
    process.exit(code)
} else {
    process.stderr.write(`worker ${process.pid} starting, cluster id ${cluster.worker!.id}\n`)
    const release = `${process.env.FEEDLINE_TEST_RELEASE}-${cluster.worker!.id}`
    while (cluster.worker!.id > 1 && !existsSync(release)) await new Promise((r) => setTimeout(r, HOLD_POLL_MS))
    process.on("SIGHUP", () => process.stderr.write(`worker ${process.pid} reloaded\n`))
    const server = net.createServer((socket) => socket.end(`${process.pid}\n`))
    server.listen(0, "127.0.0.1", () => reportReady({ devicePort: (server.address() as net.AddressInfo).port, appPort: 0, appScheme: "tcp", caCertPath: "" }))
    process.on("SIGTERM", () => server.close(() => process.exit(0)))
}
