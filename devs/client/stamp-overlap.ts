// [P§8, P§9] Resuming a whole-feed subscription without loss. The datastreams of one write share one server
// stamp, and `since` replays only what is strictly after it: resumed with since = the last `at` handled, a
// subscription whose link dropped partway through one write's pushes would never get the rest of them.
// So it resumes one ms earlier (`at`s are whole ms) and drops the points it handled at that last `at`
// already. Only that one `at`'s points are remembered, so memory stays bounded by one write.
// Import-free: the client library's subscribeForever and the dashboard page (served as /stamp-overlap.js).

/** the params of a subscribe, as the subscription cursor gives them */
export type SubscribeParams = Record<string, string | number>

export class StampOverlap {
    /** the newest `at` handled */
    private at: string | undefined = undefined
    /** datastream id -> value, of the points handled at `at` */
    private handled = new Map<string, string>()

    /**
     * A push the cursor would deliver: false when it is a point handled already at the last `at` (the overlap of
     * a resumed subscription). The same datastream at that `at` with another value was written again: delivered.
     */
    fresh(body: any): boolean {
        if (!body || typeof body !== "object" || typeof body["at"] !== "string" || body["id"] === undefined) return true
        const at: string = body["at"]
        const id = String(body["id"])
        const value = String(body["current_value"])
        if (at === this.at) {
            if (this.handled.get(id) === value) return false
        } else if (this.at === undefined || Date.parse(at) > Date.parse(this.at)) {
            this.at = at
            this.handled.clear()
        } else return true // older than the last `at` (a backfill): not part of the overlap
        this.handled.set(id, value)
        return true
    }

    /**
     * The params of the next subscribe: `since` one ms before the last `at` handled when that is where the cursor
     * resumes. Not when following a cut replay: the server never splits one `at` across the cut, and asking for
     * the last page's `at` again could ask for the same page forever when that `at` alone fills it.
     */
    resume(params: SubscribeParams, followingCut: boolean): SubscribeParams {
        const since = params["since"]
        if (followingCut || this.at === undefined || since !== this.at) return params
        return { ...params, since: new Date(Date.parse(since) - 1).toISOString() }
    }
}
