import { normalizeResource } from "../../../src/protocol.ts"
import { CONNECTION_USAGE, pairs, parse, printJson, usageError, withConnection, type ClientCommand } from "./common.ts"

const USAGE = `feedline get RESOURCE [name=value ...] [--json]
  Reads a resource and prints its body, e.g. feedline get /feeds/1
  name=value pairs become query parameters.   --json: compact, one line
${CONNECTION_USAGE}`

/** Checks a resource argument before dialling, so a typo is a usage error, not a round trip. */
export function resourceArg(text: string | undefined, usage: string): string {
    if (text === undefined) throw usageError("missing RESOURCE, e.g. /feeds/1", usage)
    const r = normalizeResource(text.startsWith("/") ? text : "/" + text)
    if (r === undefined) throw usageError(`"${text}" is not a resource path such as /feeds/1/datastreams/temp`, usage)
    return r
}

export const getCommand: ClientCommand = {
    summary: "read a resource and print it as JSON",
    usage: USAGE,
    async run(argv, io) {
        const { values, positionals } = parse(argv, { json: { type: "boolean" } }, USAGE)
        const resource = resourceArg(positionals[0], USAGE)
        const params = pairs(positionals.slice(1), USAGE)
        const body = await withConnection(values, io, (c) => c.call("get", resource, { params }))
        printJson(io, body ?? null, values.json === true)
    },
}
