// Entry of the Aedes broker child process: Aedes over node:tls, as its README wires it.
// Usage: node dist/devs/bench/targets/aedes-main.js <certPath> <keyPath> (compiled, as the feedline server runs); prints {"port":N} once listening.
import { readFileSync } from "node:fs"
import tls from "node:tls"
import { Aedes } from "aedes"

const [certPath, keyPath] = process.argv.slice(2)
const broker = await Aedes.createBroker()
// noDelay as for the other targets: Nagle's algorithm would delay small acks by tens of ms
const server = tls.createServer({ cert: readFileSync(certPath), key: readFileSync(keyPath), noDelay: true }, broker.handle as never)
server.listen(0, "127.0.0.1", () => {
    process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + "\n")
})
process.on("SIGTERM", () => {
    server.close()
    broker.close(() => process.exit(0))
})
