// The host lane of `npm test` (test/run-all.ts): node:test over the files given, in the order given,
// two at a time, each file in its own process (as `node --test --test-concurrency=2`), TAP on stdout,
// exit 1 when a test failed (as node's CLI decides it). Then one TAP comment with each file's wall
// time: `# file seconds {"<file>": s, …}`.
// Not `node --test` itself: Node 20's CLI sorts the files it is given, so the lane could not start its
// slowest files first, and the last minutes of a run were two long end-to-end files after everything
// else had finished. Run it as `node --import tsx test/run-host.ts <files>` (the files' processes
// inherit `--import tsx`).
import { resolve } from "node:path"
import { run } from "node:test"
import { tap } from "node:test/reporters"
import { FILE_SECONDS_COMMENT } from "./run-summary.ts"

const files = process.argv.slice(2)
const secondsByFile: Record<string, number> = {}
const stream = run({ files, concurrency: 2 })
stream.on("test:fail", (data) => {
    if (!data.todo) process.exitCode = 1
})
stream.on("test:complete", (data) => {
    // a file's own test: nesting 0, named with the path it was given (the file's tests are at nesting 0 too)
    if (data.nesting === 0 && data.file && resolve(data.name) === data.file)
        secondsByFile[data.name] = Math.round(data.details.duration_ms / 100) / 10
})
stream
    .compose(tap)
    .on("end", () => process.stdout.write(`${FILE_SECONDS_COMMENT}${JSON.stringify(secondsByFile)}\n`))
    .pipe(process.stdout, { end: false })
