// `feedline devices`: the fleet view and what an operator does to one device, over the network (master key).
import { CONNECTION_USAGE, parse, usageError, withConnection, type ClientCommand } from "./common.ts"
import { allPages, fetchAndPrintList, type ListView } from "./list.ts"

const USAGE = `feedline devices list [--product ID] [--json]
feedline devices rename ID NAME
feedline devices rearm ID
feedline devices revoke ID
  list: each device's hardware id, feed, claim time, last seen, link state, firmware and reboots.
  rename: the device's name, and its feed's title. rearm: its next claim gets a new key (a board that was
  reset or replaced; the old key stops working then); lifts a revocation. revoke: the device and its key
  (its connections lose it at once); its claims are refused until re-armed.
${CONNECTION_USAGE}`

const DEVICES_VIEW: ListView<any> = {
    columns: ["id", "hardware_id", "name", "feed", "claimed", "last_seen", "link", "firmware", "reboots", "state"],
    cells: (d) => [
        d.id,
        d.hardware_id,
        d.name,
        String(d.feed),
        d.claimed,
        d.last_seen ?? "never",
        d.link,
        d.firmware ?? "",
        d.reboots === null ? "" : String(d.reboots),
        d.state,
    ],
}

export const devicesCommand: ClientCommand = {
    summary: "the fleet: list devices; rename, re-arm or revoke one (master key)",
    usage: USAGE,
    async run(argv, io) {
        const { values, positionals } = parse(argv, { product: { type: "string" }, json: { type: "boolean" } }, USAGE)
        const [verb, id, ...rest] = positionals
        const needId = () => {
            if (!id) throw usageError(`devices ${verb} needs the device's ID (see devices list)`, USAGE)
            return id
        }
        if (rest.length && verb !== "rename") throw usageError(`unexpected "${rest.join(" ")}"`, USAGE)
        switch (verb) {
            case "list":
            case undefined:
                return fetchAndPrintList(values, io, (c) => allPages(c, "/devices", "devices", values.product === undefined ? {} : { product: values.product }), DEVICES_VIEW)
            case "rename": {
                const name = rest.join(" ")
                if (!name) throw usageError("devices rename needs the device's ID and the new name", USAGE)
                const d = await withConnection(values, io, (c) => c.call("put", `/devices/${needId()}`, { body: { name } }))
                return io.out(`${d.id} is now "${d.name}" (feed ${d.feed})\n`)
            }
            case "rearm": {
                const d = await withConnection(values, io, (c) => c.call("post", `/devices/${needId()}/rearm`))
                return io.out(`re-armed ${d.id} (hardware id ${d.hardware_id}): its next claim gets a new key\n`)
            }
            case "revoke": {
                const r = await withConnection(values, io, (c) => c.call("delete", `/devices/${needId()}`))
                return io.out(`revoked ${r.id} and its key ${r.revoked_key}\n`)
            }
            default:
                throw usageError(`unknown devices command "${verb}"`, USAGE)
        }
    },
}
