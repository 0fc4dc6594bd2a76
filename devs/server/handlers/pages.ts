// [P§5] The page-numbered listings (/feeds, /devices, /keys, /products; /sessions also takes `after`): one
// reading of `page` and one cut, so every listing answers bad page parameters and pages past the end alike.
import { intParam } from "./datapoints.ts"

type Params = Record<string, string | number | boolean>

/** `page` of a listing: a whole number from 1, 1 when absent; else 422 E_BAD_PARAM (was: `abc` read as 1, `1.5` as a page half-way). */
export const pageParam = (params: Params): number => intParam(params, "page", 1, Number.MAX_SAFE_INTEGER, 1, "E_BAD_PARAM", "a page past the end is an empty list")!

/** Page `params.page` of `all` (in the listing's stable order), `perPage` items a page; a page past the end is empty. */
export function pageOf<T>(all: readonly T[], params: Params, perPage: number): { totalResults: number; page: number; items: T[] } {
    const page = pageParam(params)
    return { totalResults: all.length, page, items: all.slice((page - 1) * perPage, page * perPage) }
}
