// What every list command does: fetch the items (every page of a paged collection), then print them
// for people (a table, or CSV) or for programs (--json: one compact JSON array of the items as fetched).

import type { FeedlineConnection } from "../connection.ts"
import { printJson, withConnection, type CommandIo } from "./common.ts"
import { csv, table } from "./format.ts"

/** How an item shows as a row: the header, and the item's cells in that order. */
export interface ListView<T> {
    columns: string[]
    cells: (item: T) => string[]
}

/** The output flags a list command takes (--csv only where it offers it). */
export interface ListFormat {
    json?: boolean
    csv?: boolean
}

/** Prints `items` as `format` asks; `out` is where (a command's io.out, or stdout for the local `keys list`). */
export function printList<T>(out: (text: string) => void, items: T[], view: ListView<T>, format: ListFormat): void {
    if (format.json) return printJson({ out }, items, true)
    const rows = items.map(view.cells)
    out(format.csv ? csv(view.columns, rows) : table(view.columns, rows))
}

/** Connects with the command's flags, fetches the list, prints it, closes. */
export async function fetchAndPrintList<T>(
    values: Record<string, unknown> & ListFormat,
    io: CommandIo,
    fetch: (c: FeedlineConnection) => Promise<T[]>,
    view: ListView<T>,
): Promise<void> {
    printList(io.out, await withConnection(values, io, fetch), view, values)
}

/**
 * Reads every page of a paged collection (GET answers {totalResults, page, <field>: [...]}). A collection
 * whose pages say where the next starts (`next`: GET /sessions) is followed by `after`, each page then
 * costing the server that page alone; the others by `page`.
 */
export async function allPages(c: FeedlineConnection, resource: string, field: string, params: Record<string, string | number> = {}): Promise<any[]> {
    const items: any[] = []
    let next: string | undefined
    for (let page = 1; ; page++) {
        const body = await c.call("get", resource, { params: next === undefined ? { ...params, page } : { ...params, after: next } })
        items.push(...body[field])
        // an answer without totalResults is the whole list (a server from before /keys and /products were paged)
        if (typeof body.totalResults !== "number" || body[field].length === 0 || (typeof body.next !== "string" && items.length >= body.totalResults)) return items
        if (typeof body.next === "string") next = body.next
        else if (next !== undefined) return items
    }
}
