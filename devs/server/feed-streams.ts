// [P§10] The datastreams of each feed, as far as this process knows them, so that a write naming new ones is
// held to MAX_DATASTREAMS_PER_FEED before anything of it is stored, without a query per write (the hot path
// names datastreams the feed has: a lookup in a Set). A feed's ids are read from the store at its first
// write here; the ids a write names are counted when it is admitted (before its commit), so writes in flight
// together cannot pass the bound between them. What this process does not see (another process's new
// datastreams, or its deletions) is read again before a refusal, so nothing is refused on a stale count; the
// ids counted in since the last read stay counted through that read (their writes may not have committed). A
// feed can go over the bound only by what other processes add between this process's reads, or by a write
// still uncommitted across two of them (docs/OPERATIONS.md).
import { ApiError } from "./errors.ts"
import { MAX_COUNTED_DATASTREAMS, MAX_DATASTREAMS_PER_FEED } from "./limits.ts"

const tooManyDatastreams = (feed: number, have: number, adding: number, max: number) =>
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

/** A feed's ids as this process knows them; `added`: those it counted in since it last read them (writes maybe still in flight). */
interface Known {
    ids: Set<string>
    added: Set<string>
}

export class FeedStreams {
    private readonly known = new Map<number, Known>()
    private readonly loading = new Map<number, Promise<Known>>()
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
        const known = this.known.get(feed)
        if (known !== undefined) {
            const fresh = freshOf(known.ids, ids)
            if (fresh === undefined) return
            if (known.ids.size + fresh.length <= this.max) return this.add(known, fresh)
        }
        // over, as this process knows it: read again (another process may have deleted some) before refusing;
        // what it counted in since its last read stays counted (those writes may not have committed yet)
        return this.load(feed, known?.added).then((read) => {
            const fresh = freshOf(read.ids, ids)
            if (fresh === undefined) return
            if (read.ids.size + fresh.length > this.max) throw tooManyDatastreams(feed, read.ids.size, fresh.length, this.max)
            this.add(read, fresh)
        })
    }

    /**
     * A new feed's datastreams (`feed`: its id when the request names one), before it is made: it has none
     * yet, so only the request's own count is held to the bound; throws 422 E_TOO_MANY_DATASTREAMS.
     */
    admitNewFeed(feed: number | undefined, ids: readonly string[]): void {
        const named = new Set(ids).size
        if (named <= this.max) return
        // no feed yet (and without an id in the request, no id to name): what to change is this request
        throw new ApiError(
            422,
            "E_TOO_MANY_DATASTREAMS",
            `the new feed${feed === undefined ? "" : ` ${feed}`} would have ${named} datastreams; a feed may have at most ${this.max}: name at most ${this.max} in "datastreams", or spread them over several feeds. Nothing was made`,
        )
    }

    /** A datastream deleted (undefined: the whole feed). */
    forget(feed: number, id?: string): void {
        const known = this.known.get(feed)
        if (known === undefined) return
        if (id === undefined) return this.drop(feed)
        known.added.delete(id)
        if (known.ids.delete(id)) this.held--
    }

    private add(known: Known, fresh: string[]): void {
        for (const id of fresh) {
            known.ids.add(id)
            known.added.add(id)
        }
        this.held += fresh.length
    }

    private drop(feed: number): void {
        const known = this.known.get(feed)
        if (known === undefined) return
        this.held -= known.ids.size
        this.known.delete(feed)
    }

    /** The feed's ids from the store, with `inFlight` (counted in here since the last read) added. */
    private load(feed: number, inFlight?: Set<string>): Promise<Known> {
        let pending = this.loading.get(feed)
        if (pending === undefined) {
            pending = this.o.idsOf(feed).then(
                (stored) => {
                    this.loading.delete(feed)
                    const ids = new Set(stored)
                    for (const id of inFlight ?? []) ids.add(id)
                    this.drop(feed)
                    // the feeds read longest ago make room (a Map iterates in insertion order): each is read
                    // again at its next write, rather than every feed at once after a clear
                    for (const oldest of this.known.keys()) {
                        if (this.held + ids.size <= this.maxHeld) break
                        this.drop(oldest)
                    }
                    const known = { ids, added: new Set<string>() }
                    this.known.set(feed, known)
                    this.held += ids.size
                    return known
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
