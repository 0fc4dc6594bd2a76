// Xively v2 JSON shapes of what the server returns.
import type { DatastreamRecord, FeedRecord } from "../storage/store.ts"
import { isoOf } from "../time.ts"

export function datastreamJson(ds: DatastreamRecord): Record<string, unknown> {
    return {
        id: ds.id,
        current_value: ds.currentValue,
        at: ds.atMs === undefined ? undefined : isoOf(ds.atMs),
        min_value: ds.minValue === undefined ? undefined : String(ds.minValue),
        max_value: ds.maxValue === undefined ? undefined : String(ds.maxValue),
    }
}

export function feedJson(feed: FeedRecord, datastreams?: DatastreamRecord[]): Record<string, unknown> {
    return {
        id: feed.id,
        title: feed.title,
        version: "1.0.0",
        created: isoOf(feed.createdMs),
        updated: isoOf(feed.updatedMs),
        datastreams: datastreams?.map(datastreamJson),
    }
}

export function pointJson(p: { atMs: number; value: string }): Record<string, unknown> {
    return { at: isoOf(p.atMs), value: p.value }
}
