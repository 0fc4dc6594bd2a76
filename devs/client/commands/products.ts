// `feedline products`: make, list and revoke products over the network (master key), and print the
// activation codes of a batch of boards from the product secret, here, without the server (docs/FLEET.md).
import fs from "node:fs"
import { activationCode, HARDWARE_ID, parseProductSecret } from "../../server/fleet/claim-codes.ts"
import { ClientError } from "../errors.ts"
import { PRIVATE_FILE_MODE } from "../../server/storage/private-folder.ts"
import { allPages, fetchAndPrintList, type ListView } from "./list.ts"
import { CONNECTION_USAGE, parse, printJson, usageError, withConnection, type ClientCommand, type CommandIo } from "./common.ts"

const USAGE = `feedline products list [--json]
feedline products create --title TITLE [--datastream ID[=POLICY]]... [--allow HWID,...|--allow-file FILE] [--claim-limit N] [--secret-file FILE]
feedline products revoke ID
feedline products codes (--secret-file FILE | $FEEDLINE_PRODUCT_SECRET) (--hardware-ids HWID,... | --hardware-ids-file FILE) [--json]
  create prints the product with its secret, once: keep it (a file only you can read); the server keeps
  only what checks codes. With --secret-file the secret goes into FILE instead (made new, mode 0600). --datastream temp="i=10s d=0.2" declares a datastream and its sampling policy.
  codes prints "<hardware id> <activation code>" for each board, computed here from the secret (no
  server, no key); a file holds one hardware id a line (# comments and blank lines skipped).
  revoke: the product takes no new claims; its devices keep working.
${CONNECTION_USAGE}`

function listOf(text: string | undefined, file: string | undefined, what: string): string[] | undefined {
    if (text !== undefined && file !== undefined) throw usageError(`give --${what} or --${what}-file, not both`, USAGE)
    let items: string[] | undefined
    if (text !== undefined) items = text.split(",")
    if (file !== undefined) {
        try {
            items = fs.readFileSync(file, "utf8").split("\n")
        } catch (e) {
            throw new ClientError("E_USAGE", `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`)
        }
    }
    return items?.map((s) => s.replace(/#.*/, "").trim()).filter(Boolean)
}

function hardwareIds(items: string[] | undefined, flag: string): string[] | undefined {
    if (items === undefined) return undefined
    if (!items.length) throw usageError(`--${flag} names no hardware id`, USAGE)
    const bad = items.find((h) => !HARDWARE_ID.test(h))
    if (bad !== undefined) throw usageError(`"${bad}" is not a hardware id (1 to 64 characters of A-Za-z0-9_.:-)`, USAGE)
    return items
}

function secretOf(file: string | undefined, io: CommandIo): string {
    let text = io.env.FEEDLINE_PRODUCT_SECRET
    if (file !== undefined) {
        try {
            text = fs.readFileSync(file, "utf8")
        } catch (e) {
            throw new ClientError("E_USAGE", `cannot read the product secret from ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`)
        }
    }
    // not from the command line: it would stay in the shell's history and show in `ps`
    if (text === undefined) throw usageError("codes needs the product secret: --secret-file FILE or $FEEDLINE_PRODUCT_SECRET", USAGE)
    return text
}

function codes(values: Record<string, unknown>, io: CommandIo): void {
    const parsed = parseProductSecret(secretOf(values["secret-file"] as string | undefined, io))
    if (!parsed) throw new ClientError("E_USAGE", "that is not a product secret (it looks like p1234abcd.<43 characters>, as `products create` printed it)")
    const ids = hardwareIds(listOf(values["hardware-ids"] as string | undefined, values["hardware-ids-file"] as string | undefined, "hardware-ids"), "hardware-ids")
    if (!ids) throw usageError("codes needs the boards' hardware ids: --hardware-ids or --hardware-ids-file", USAGE)
    const rows = ids.map((hw) => ({ product: parsed.productId, hardware_id: hw, code: activationCode(parsed.signingKey, parsed.productId, hw) }))
    if (values.json) return printJson(io, rows, true)
    io.out(rows.map((r) => `${r.hardware_id} ${r.code}\n`).join(""))
}

function datastreamsOf(items: string[] | undefined): { id: string; policy?: string }[] | undefined {
    return items?.map((item) => {
        const eq = item.indexOf("=")
        return eq < 0 ? { id: item } : { id: item.slice(0, eq), policy: item.slice(eq + 1) }
    })
}

const PRODUCTS_VIEW: ListView<any> = {
    columns: ["id", "title", "devices", "limit", "hardware", "created", "state"],
    cells: (p) => [
        p.id,
        p.title,
        String(p.devices ?? ""),
        p.claim_limit === undefined ? "" : String(p.claim_limit),
        p.allow_list === undefined ? "any" : `${p.allow_list.length} listed`,
        p.created,
        p.revoked ? `revoked ${p.revoked}` : "",
    ],
}

export const productsCommand: ClientCommand = {
    summary: "products for fleet provisioning: create, list, revoke; print boards' activation codes",
    usage: USAGE,
    async run(argv, io) {
        const { values, positionals } = parse(
            argv,
            {
                title: { type: "string" },
                datastream: { type: "string", multiple: true },
                allow: { type: "string" },
                "allow-file": { type: "string" },
                "claim-limit": { type: "string" },
                "secret-file": { type: "string" },
                "hardware-ids": { type: "string" },
                "hardware-ids-file": { type: "string" },
                json: { type: "boolean" },
            },
            USAGE
        )
        const [verb, id, ...rest] = positionals
        if (rest.length) throw usageError(`unexpected "${rest.join(" ")}"`, USAGE)
        switch (verb) {
            case "list":
            case undefined:
                return fetchAndPrintList(values, io, (c) => allPages(c, "/products", "products"), PRODUCTS_VIEW)
            case "create": {
                if (!values.title) throw usageError("products create needs --title", USAGE)
                const limit = values["claim-limit"]
                if (limit !== undefined && !/^[1-9][0-9]*$/.test(limit)) throw usageError(`--claim-limit takes a positive whole number, not "${limit}"`, USAGE)
                const body = {
                    title: values.title,
                    datastreams: datastreamsOf(values.datastream),
                    allow_list: hardwareIds(listOf(values.allow, values["allow-file"], "allow"), "allow"),
                    claim_limit: limit === undefined ? undefined : Number(limit),
                }
                const secretFile = values["secret-file"] as string | undefined
                if (secretFile !== undefined && fs.existsSync(secretFile)) throw new ClientError("E_USAGE", `${secretFile} exists already; the secret goes into a new file (it would replace another product's secret)`)
                const created = await withConnection(values, io, (c) => c.call("post", "/products", { body }))
                if (secretFile !== undefined) {
                    // made new (wx) and owner-only from its first byte; the product is made by now: say where its secret went, or what it is
                    try {
                        fs.writeFileSync(secretFile, created.secret + "\n", { mode: PRIVATE_FILE_MODE, flag: "wx" })
                    } catch (e) {
                        printJson(io, created, values.json === true)
                        throw new ClientError("E_USAGE", `product ${created.id} was made, but its secret could not be written to ${secretFile} (${(e as NodeJS.ErrnoException).code ?? e}): it is printed above, keep it now`)
                    }
                    printJson(io, { ...created, secret: undefined, secret_file: secretFile }, values.json === true)
                    return
                }
                printJson(io, created, values.json === true)
                if (!values.json) io.err("Keep the secret now (a file only you can read): the server cannot show it again, and it makes every board's activation code.\n")
                return
            }
            case "revoke": {
                if (!id) throw usageError("products revoke needs the product's ID (see products list)", USAGE)
                await withConnection(values, io, (c) => c.call("delete", `/products/${id}`))
                return io.out(`revoked ${id}: it takes no new claims; its devices keep working\n`)
            }
            case "codes":
                return codes(values, io)
            default:
                throw usageError(`unknown products command "${verb}"`, USAGE)
        }
    },
}
