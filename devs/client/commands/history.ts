import { isDatastreamId } from "../../../src/protocol.ts"

/** [P§5] one history request returns at most this many points */
export const MAX_HISTORY_POINTS = 1000
import { CONNECTION_USAGE, parse, usageError, type ClientCommand } from "./common.ts"
import { fetchAndPrintList, type ListView } from "./list.ts"

const USAGE = `feedline history DATASTREAM [--feed N] [--duration 6hours] [--interval 60] [--start T] [--end T] [--limit N] [--csv|--json]
  DATASTREAM: temp (with --feed or $FEEDLINE_FEED), 1/temp, or /feeds/1/datastreams/temp
  --duration  30seconds, 10minutes, 6hours, 2days, 1weeks ...
  --interval  seconds; at most one point (the first) per interval
  --limit     at most this many points, the newest of the range (default and most: 1000, the
              server's cap for one request; the server's own default would be 100)
  Prints a table of at and value; --csv or --json for programs.
${CONNECTION_USAGE}`

/** The datapoints resource of a datastream argument. */
export function datapointsResource(arg: string | undefined, feed: string | undefined): string {
    if (!arg) throw usageError("missing DATASTREAM", USAGE)
    const parts = arg.replace(/^\/+/, "").split("/")
    let feedId: string | undefined, ds: string | undefined
    if (parts.length === 4 && parts[0] === "feeds" && parts[2] === "datastreams") [feedId, ds] = [parts[1], parts[3]]
    else if (parts.length === 2) [feedId, ds] = parts
    else if (parts.length === 1) [feedId, ds] = [feed, parts[0]]
    if (!feedId) throw usageError(`which feed is "${arg}" in? give --feed N, set FEEDLINE_FEED, or write 1/${arg}`, USAGE)
    if (!/^[1-9][0-9]*$/.test(feedId)) throw usageError(`"${feedId}" is not a feed id (a positive integer)`, USAGE)
    if (!isDatastreamId(ds)) throw usageError(`"${ds}" is not a datastream id (1-64 of A-Za-z0-9_.-)`, USAGE)
    return `/feeds/${feedId}/datastreams/${ds}/datapoints`
}

type Point = { at: string; value: string }

/** The datapoints of a history answer ({datapoints:[...]}, or a bare list). */
function pointsOf(body: any): Point[] {
    return Array.isArray(body?.datapoints) ? body.datapoints : Array.isArray(body) ? body : []
}

const POINTS_VIEW: ListView<Point> = { columns: ["at", "value"], cells: (p) => [String(p.at), String(p.value)] }

export const historyCommand: ClientCommand = {
    summary: "print a datastream's history as a table, CSV or JSON",
    usage: USAGE,
    async run(argv, io) {
        const { values, positionals } = parse(
            argv,
            {
                feed: { type: "string", short: "f" },
                duration: { type: "string", short: "d" },
                interval: { type: "string", short: "i" },
                start: { type: "string" },
                end: { type: "string" },
                limit: { type: "string" },
                csv: { type: "boolean" },
                json: { type: "boolean" },
            },
            USAGE
        )
        if (values.csv && values.json) throw usageError("choose --csv or --json", USAGE)
        const resource = datapointsResource(positionals[0], values.feed ?? io.env.FEEDLINE_FEED)
        const params: Record<string, string> = {}
        for (const p of ["duration", "interval", "start", "end", "limit"] as const) if (values[p] !== undefined) params[p] = values[p]!
        params.limit ??= String(MAX_HISTORY_POINTS)
        await fetchAndPrintList(values, io, async (c) => pointsOf(await c.call("get", resource, { params })), POINTS_VIEW)
    },
}
