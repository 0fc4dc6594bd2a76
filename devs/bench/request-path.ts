// `npm run bench:request-path`: what the server's main thread spends per acknowledged update above the
// store, in one process and without sockets, so that a change to the framer, decode, session, router,
// handler, hub, metrics or answer shows in a figure this shared machine's noise does not drown (the
// hot path bench's figure follows its throughput and the neighbours' load by ±20 %). The real server
// (startServer, SQLite store, info logging), 50 sessions on wires that only count their lines, each fed
// chunks of 4 short-form updates as the load generator writes them (`put /feeds/:id`, one datastream,
// one stamped point) and every update answered before the next round; the store's `writePoints` answers
// at once (its own cost, the writer thread's hop and the commit, is the store's and not measured here).
// Prints CPU time per update (the whole process: the writer thread is idle), and with
// FEEDLINE_REQUEST_PATH_ALLOC=1 the bytes allocated per update (V8's sampling heap profiler, collected
// objects included).
//   FEEDLINE_REQUEST_PATH_ROUNDS=5   measured rounds (each FEEDLINE_REQUEST_PATH_UPDATES updates, default 100000)
//   FEEDLINE_REQUEST_PATH_STORE=1    the real store instead (its writer thread, the durable commit): the main thread's
//                                    CPU per update with its side of the hop to that thread (one message of 200 writes a round)
import { runEntry } from "./entry.ts"
import { measureRequestPath } from "./request-path-measure.ts"

runEntry(async () => {
    await measureRequestPath({
        rounds: Number(process.env.FEEDLINE_REQUEST_PATH_ROUNDS ?? 5),
        updatesPerRound: Number(process.env.FEEDLINE_REQUEST_PATH_UPDATES ?? 100_000),
        sampleAlloc: process.env.FEEDLINE_REQUEST_PATH_ALLOC === "1",
        realStore: process.env.FEEDLINE_REQUEST_PATH_STORE === "1",
        log: (l) => console.log(l),
    })
})
