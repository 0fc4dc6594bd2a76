import { allPages, fetchAndPrintList, type ListView } from "./list.ts"
import { CONNECTION_USAGE, parse, printJson, usageError, withConnection, type ClientCommand } from "./common.ts"

const USAGE = `feedline keys list [--json]
feedline keys create [--label L] [--permissions read,update,create,delete] [--feeds 1,2] [--master]
feedline keys revoke ID
  Manages API keys over the network; needs a master key. The new key's secret is shown once.
  (On the server machine, \`feedline keys --data-dir DIR ...\` works on the data directory directly.)
${CONNECTION_USAGE}`

function list(text: string | undefined, what: string): string[] | undefined {
    if (text === undefined) return undefined
    const items = text.split(",").map((s) => s.trim()).filter(Boolean)
    if (!items.length) throw usageError(`--${what} needs a comma-separated list`, USAGE)
    return items
}

/** A key as `keys list` shows it, over the network and on the data folder (devs/cli.ts) alike. */
export const KEYS_VIEW: ListView<any> = {
    columns: ["id", "label", "permissions", "feeds", "created", "state"],
    cells: (k) => [
        String(k.id),
        String(k.label ?? ""),
        k.master ? "master" : (k.permissions ?? []).join(","),
        Array.isArray(k.feeds) ? k.feeds.join(",") : String(k.feeds ?? "*"),
        String(k.created ?? ""),
        k.revoked ? `revoked ${k.revoked}` : "",
    ],
}

export const keysCommand: ClientCommand = {
    summary: "list, create and revoke API keys (master key)",
    usage: USAGE,
    async run(argv, io) {
        const { values, positionals } = parse(
            argv,
            { label: { type: "string" }, permissions: { type: "string" }, feeds: { type: "string" }, master: { type: "boolean" }, json: { type: "boolean" } },
            USAGE
        )
        const [verb, id, ...rest] = positionals
        if (rest.length) throw usageError(`unexpected "${rest.join(" ")}"`, USAGE)
        switch (verb) {
            case "list":
            case undefined:
                return fetchAndPrintList(values, io, (c) => allPages(c, "/keys", "keys"), KEYS_VIEW)
            case "create": {
                const feeds = list(values.feeds, "feeds")?.map((f) => {
                    if (!/^[1-9][0-9]*$/.test(f)) throw usageError(`"${f}" is not a feed id`, USAGE)
                    return Number(f)
                })
                const body = {
                    label: values.label,
                    permissions: list(values.permissions, "permissions") ?? ["read"],
                    feeds,
                    master: values.master || undefined,
                }
                const created = await withConnection(values, io, (c) => c.call("post", "/keys", { body }))
                return printJson(io, created, values.json === true)
            }
            case "revoke": {
                if (!id) throw usageError("keys revoke needs the key's ID (see keys list)", USAGE)
                await withConnection(values, io, (c) => c.call("delete", `/keys/${id}`))
                return io.out(`revoked ${id}\n`)
            }
            default:
                throw usageError(`unknown keys command "${verb}"`, USAGE)
        }
    },
}
