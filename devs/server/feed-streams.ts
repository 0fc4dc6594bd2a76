// [P§10] The datastreams of each feed, as far as this process knows them, so that a write naming new ones is
// held to MAX_DATASTREAMS_PER_FEED before anything of it is stored, without a query per write (the hot path
// names datastreams the feed has: a lookup in a Set). A feed's ids are read from the store at its first
// write here; the ids a write names are counted when it is admitted (before its commit), so writes in flight
// together cannot pass the bound between them. What this process does not see (another process's new
// datastreams, or its deletions) is read again before a refusal, so nothing is refused on a stale count; a
// feed can go over the bound only by what other processes add between this process's reads (docs/OPERATIONS.md).
import { ApiError } from "./errors.ts"
import { MAX_COUNTED_DATASTREAMS, MAX_DATASTREAMS_PER_FEED } from "./limits.ts"

export const tooManyDatastreams = (feed: number, have: number, adding: number, max: number) =>
    new ApiError(
        422,
        "E_TOO_MANY_DATASTREAMS",
        `feed ${feed} has ${have} datastreams and this request would add ${adding}; a feed may have at most ${max}: write to the datastreams it has, delete some (DELETE /feeds/${feed}/datastreams/<id>) or use another feed. Nothing was written`,
    )

export interface FeedStreamsOptions {
    /** the ids of a feed's datastreams as the store has them now (journaled points included) */
    idsOf: (feed: number) => Promise<string[]>
    max?: number
    /** ids held over all feeds before they are forgotten */
    maxHeld?: number
}

export class FeedStreams {
    private readonly known = new Map<number, Set<string>>()
    private readonly loading = new Map<number, Promise<Set<string>>>()
    private held = 0
    readonly max: number
    private readonly maxHeld: number

    constructor(private readonly o: FeedStreamsOptions) {
        this.max = o.max ?? MAX_DATASTREAMS_PER_FEED
        this.maxHeld = o.maxHeld ?? MAX_COUNTED_DATASTREAMS
    }

    /**
     * Counts `ids` (a write's datastreams) into `feed`, or throws 422 E_TOO_MANY_DATASTREAMS when the new ones
     * would take it over the bound. undefined when decided at once (every id known, or the feed's ids at
     * hand); a promise when the feed's ids must be read first. Call after the feed is known to exist.
     */
    admit(feed: number, ids: readonly string[]): void | Promise<void> {
        if (ids.length === 0) return
        const set = this.known.get(feed)
        if (set !== undefined) {
            const fresh = freshOf(set, ids)
            if (fresh === undefined) return
            if (set.size + fresh.length <= this.max) return this.add(set, fresh)
            // over, as this process knows it: read again (another process may have deleted some) before refusing
            this.drop(feed)
        }
        return this.load(feed).then((loaded) => {
            const fresh = freshOf(loaded, ids)
            if (fresh === undefined) return
            if (loaded.size + fresh.length > this.max) throw tooManyDatastreams(feed, loaded.size, fresh.length, this.max)
            this.add(loaded, fresh)
        })
    }

    /** A datastream deleted (undefined: the whole feed). */
    forget(feed: number, id?: string): void {
        const set = this.known.get(feed)
        if (set === undefined) return
        if (id === undefined) return this.drop(feed)
        if (set.delete(id)) this.held--
    }

    private add(set: Set<string>, fresh: string[]): void {
        for (const id of fresh) set.add(id)
        this.held += fresh.length
    }

    private drop(feed: number): void {
        const set = this.known.get(feed)
        if (set === undefined) return
        this.held -= set.size
        this.known.delete(feed)
    }

    private load(feed: number): Promise<Set<string>> {
        let pending = this.loading.get(feed)
        if (pending === undefined) {
            pending = this.o.idsOf(feed).then(
                (ids) => {
                    this.loading.delete(feed)
                    const set = new Set(ids)
                    if (this.held + set.size > this.maxHeld) {
                        this.known.clear()
                        this.held = 0
                    }
                    this.drop(feed)
                    this.known.set(feed, set)
                    this.held += set.size
                    return set
                },
                (e: unknown) => {
                    this.loading.delete(feed)
                    throw e
                },
            )
            this.loading.set(feed, pending)
        }
        return pending
    }
}

/** The ids not in `set` (each once), or undefined when there are none (the hot path: no list made). */
function freshOf(set: Set<string>, ids: readonly string[]): string[] | undefined {
    let fresh: string[] | undefined
    for (const id of ids) if (!set.has(id) && !fresh?.includes(id)) (fresh ??= []).push(id)
    return fresh
}
