import { encodeResponse, type Response } from "../../../src/protocol.ts"
import { subscribeForever } from "../subscriber.ts"
import { CONNECTION_USAGE, connectOptions, parse, usageError, type ClientCommand, type CommandIo } from "./common.ts"
import { printable } from "./format.ts"
import { resourceArg } from "./get.ts"

const USAGE = `feedline sub RESOURCE [--since AT] [--count N] [--json] [--quiet]
  Subscribes and prints each push as it arrives, one line each:  AT  RESOURCE  VALUE
  Reconnects by itself (backoff with jitter) and resumes after the last push printed, by the
  server's write order (its seq), so nothing is missed or printed twice, points a device sent
  late with an older time included. Stops on Ctrl-C, after --count pushes, or on a
  fatal error (wrong key, untrusted certificate).
  --since AT   replay points after AT first (ISO-8601 as the server writes it, or ms)
  --count N    exit after N pushes
  --json       print each push envelope as JSON
  --quiet      no connection messages on stderr
${CONNECTION_USAGE}`

/** One line per datapoint of a push (values printable(): a device wrote them); a feed push carries several datastreams. */
export function pushLines(push: Response): string[] {
    return rawPushLines(push).map(printable)
}

function rawPushLines(push: Response): string[] {
    const b = push.body ?? {}
    const resource = push.resource ?? ""
    if (b.deleted) return [`${resource}  deleted`]
    if (Array.isArray(b.datastreams)) {
        return b.datastreams.map((d: any) => `${d.at ?? "-"}  ${resource}/datastreams/${d.id}  ${d.current_value ?? ""}`)
    }
    return [`${b.at ?? "-"}  ${resource}  ${b.current_value ?? b.value ?? JSON.stringify(b)}`]
}

export const subCommand: ClientCommand = {
    summary: "subscribe and print each push; reconnects by itself",
    usage: USAGE,
    async run(argv, io: CommandIo) {
        const { values, positionals } = parse(
            argv,
            { since: { type: "string" }, count: { type: "string" }, json: { type: "boolean" }, quiet: { type: "boolean", short: "q" } },
            USAGE
        )
        const resource = resourceArg(positionals[0], USAGE)
        if (positionals.length > 1) throw usageError("sub takes one RESOURCE", USAGE)
        const count = values.count === undefined ? Infinity : Number(values.count)
        if (!(count > 0)) throw usageError("--count must be a positive number", USAGE)
        const stop = new AbortController()
        io.signal?.addEventListener("abort", () => stop.abort(), { once: true })
        const note = (text: string) => values.quiet || io.err(text + "\n")
        let seen = 0
        /** pushes for another resource under the subscription's token: the first is told */
        let foreign = 0
        await subscribeForever({
            ...connectOptions(values, io.env),
            resource,
            since: values.since,
            signal: stop.signal,
            onPush(push) {
                if (push.status === 408) return note(`subscription ended by the server: ${push.body?.errors ?? "timeout"}`)
                if (push.status >= 400) return // a final push: subscribeForever rejects with it, and the command reports it
                if (values.json) io.out(encodeResponse(push) + "\n")
                else for (const l of pushLines(push)) io.out(l + "\n")
                if (++seen >= count) stop.abort()
            },
            onEvent(e) {
                if (e.kind === "subscribed") note(`subscribed to ${resource} (session ${e.session}${e.since ? ", replaying after " + e.since : ""})`)
                else if (e.kind === "gap" && e.bySeq) note(`the replay starts at seq ${e.retainedFrom}: datapoints written after the last one handled were past the server's retention and are missing`)
                else if (e.kind === "gap") note(`the server's retention deleted datapoints after the since asked for: the history is whole from ${e.retainedFrom} on`)
                else if (e.kind === "lost") note(`connection lost: ${e.error.message}`)
                else if (e.kind === "retrying") note(`reconnecting in ${e.delayMs} ms (attempt ${e.attempt})`)
                else if (e.kind === "rewound") note(`the server's seq ${e.seq} is below ${e.fromSeq}, the last handled (its history was reset, restored or moved to another store): asking for what it got since the last point handled, then following its seqs`)
                else if (e.kind === "skipped") note(`${e.count} of a replay's points could not be read (a bad line, such as \\uFFFE from an older store): skipped, going on past them`)
                else if (e.kind === "foreign" && foreign++ === 0) note(`E_FOREIGN_PUSH: a push for ${e.push.resource} under the subscription to ${resource}; ignored, and any more after it without a word`)
                else if (e.kind === "refused") note(`subscribe refused for now (${e.error.message}); asking again in ${e.delayMs} ms`)
                else if (e.kind === "link" && e.state === "degraded") note("link degraded: the server has been silent longer than its `faulty` time")
            },
        })
    },
}
