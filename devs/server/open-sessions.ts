// This process's open connections (a session adds itself on start and removes itself when closed), with
// an index of the connections of feed-scoped keys by feed, so that GET /sessions for a key scoped to some
// feeds looks only at the connections it may see [P§5], not at every connection of the process: a
// dashboard lists its feeds' devices every 5 s, and at 20,000 connections each list looked at all of them.
// The index is a superset: the handler still decides what a key sees (handlers/session.ts sharedFeeds),
// with the grant a connection holds when it lists.
import type { Grant } from "./auth/grant.ts"

/** What the index needs of a connection: the grant of its key. */
export interface Granted {
    readonly grant?: Grant
}

export class OpenSessions<S extends Granted> extends Set<S> {
    /** the connections of non-master keys scoped to each feed */
    private readonly byFeed = new Map<number, Set<S>>()
    /** the feeds each indexed connection is under */
    private readonly indexed = new Map<S, readonly number[]>()

    override delete(s: S): boolean {
        if (!super.delete(s)) return false
        this.unindex(s)
        return true
    }

    override clear(): void {
        super.clear()
        this.byFeed.clear()
        this.indexed.clear()
    }

    /** `s` authenticated with another grant than it held (Session.authenticated): indexed under its feeds. */
    regranted(s: S): void {
        if (!this.has(s)) return
        this.unindex(s)
        const g = s.grant
        if (g === undefined || g.master || g.feeds === undefined || g.feeds.length === 0) return
        this.indexed.set(s, g.feeds)
        for (const feed of g.feeds) {
            let set = this.byFeed.get(feed)
            if (!set) this.byFeed.set(feed, (set = new Set()))
            set.add(s)
        }
    }

    /**
     * The connections `viewer` may see, and perhaps a few more (the handler filters): a key scoped to
     * feeds sees only connections of keys scoped to some of them; a master or all-feeds key (or none
     * given: announcing to other processes) looks at all.
     */
    visibleTo(viewer?: Grant): Iterable<S> {
        if (viewer === undefined || viewer.master || viewer.feeds === undefined) return this
        if (viewer.feeds.length === 1) return this.byFeed.get(viewer.feeds[0]) ?? []
        const out = new Set<S>()
        for (const feed of viewer.feeds) for (const s of this.byFeed.get(feed) ?? []) out.add(s)
        return out
    }

    private unindex(s: S): void {
        const feeds = this.indexed.get(s)
        if (feeds === undefined) return
        this.indexed.delete(s)
        for (const feed of feeds) {
            const set = this.byFeed.get(feed)
            if (set?.delete(s) && set.size === 0) this.byFeed.delete(feed)
        }
    }
}
