import { isDatastreamId, resourceSegments, valueText, MAX_VALUE_CHARS } from "../../../src/protocol.ts"
import { CONNECTION_USAGE, pairs, parse, printJson, usageError, withConnection, type ClientCommand } from "./common.ts"
import { resourceArg } from "./get.ts"

const USAGE = `feedline put RESOURCE id=value ... | put DATASTREAM-RESOURCE value | put RESOURCE --body JSON
  feedline put /feeds/1 temp=21.5 hum=40           update several datastreams of a feed
  feedline put /feeds/1/datastreams/relay 1        update one datastream
  feedline put /feeds/1 --body '{"datastreams":[...]}'  any body
  -v, --verbose  print the response
${CONNECTION_USAGE}`

/** The request body for `put` from its command-line words. */
export function putBody(resource: string, words: string[], rawBody: string | undefined): unknown {
    if (rawBody !== undefined) {
        if (words.length) throw usageError("give either --body or values, not both", USAGE)
        try {
            return JSON.parse(rawBody)
        } catch {
            throw usageError("--body is not valid JSON", USAGE)
        }
    }
    if (!words.length) throw usageError("nothing to write: give id=value pairs, a value, or --body", USAGE)
    const seg = resourceSegments(resource)
    const isDatastream = seg.length === 4 && seg[0] === "feeds" && seg[2] === "datastreams"
    if (isDatastream && words.length === 1 && !words[0].includes("=")) return { current_value: checkedValue(words[0]) }
    if (!(seg.length === 2 && seg[0] === "feeds")) throw usageError(`id=value pairs go to a feed such as /feeds/1; for ${resource} use --body`, USAGE)
    const values = pairs(words, USAGE)
    return {
        version: "1.0.0",
        datastreams: Object.entries(values).map(([id, v]) => {
            if (!isDatastreamId(id)) throw usageError(`"${id}" is not a datastream id (1-64 of A-Za-z0-9_.-)`, USAGE)
            return { id, current_value: checkedValue(v) }
        }),
    }
}

function checkedValue(v: string): string {
    if (valueText(v) === undefined) throw usageError(`value "${v}" is longer than ${MAX_VALUE_CHARS} characters`, USAGE)
    return v
}

export const putCommand: ClientCommand = {
    summary: "write values: put /feeds/1 temp=21.5 hum=40",
    usage: USAGE,
    async run(argv, io) {
        const { values, positionals } = parse(argv, { body: { type: "string" }, verbose: { type: "boolean", short: "v" } }, USAGE)
        const resource = resourceArg(positionals[0], USAGE)
        const body = putBody(resource, positionals.slice(1), values.body)
        const result = await withConnection(values, io, (c) => c.call("put", resource, { body }))
        if (values.verbose) printJson(io, result ?? { ok: true }, false)
    },
}
