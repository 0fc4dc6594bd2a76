// A store whose commits a test can hold open (startServer's `wrapStore`): while held, a write waits
// before its commit begins, so the test knows a request is in flight (an event, not a sleep) and can
// see that nothing acknowledges it before its commit returned. Held after its commit instead
// (`new CommitGate("after-commit")`), a write is stored but its server has not yet answered or published
// it: another process's later write can overtake it on the way to subscribers.
import { Later, listenTo, type Settles } from "../../../devs/server/later.ts"
import type { Store, StoredPoint } from "../../../devs/server/storage/store.ts"

export class CommitGate {
    private holding = false
    private readonly waiting: (() => void)[] = []
    private readonly arrivals: (() => void)[] = []
    /** writes that reached the store (held or not) */
    entered = 0
    /** writes whose commit returned */
    committed = 0

    constructor(private readonly holds: "before-commit" | "after-commit" = "before-commit") {}

    /**
     * the server's store with a gate in front of writePoints (the rest untouched). A write that names a
     * listener (the hot path's `to`) is told through the gate, and the store below is asked with one too, so
     * that the path a server takes without the gate (no promise between the commit and the acknowledgement)
     * is the one held here.
     */
    wrap = (store: Store): Store =>
        new Proxy(store, {
            get: (target, prop) => {
                if (prop === "writePoints") {
                    return (feed: number, points: Parameters<Store["writePoints"]>[1], _nowMs?: number, _keysAsOf?: number, to?: Settles<StoredPoint[]>) => {
                        const written = this.write(target, feed, points)
                        if (to === undefined) return written
                        listenTo(written, to)
                        return undefined
                    }
                }
                const v = Reflect.get(target, prop, target)
                return typeof v === "function" ? v.bind(target) : v
            },
        })

    /** writes from now on wait before their commit (or after it: the constructor's `holds`), until release() */
    hold(): void {
        this.holding = true
    }

    /** lets every held write commit, and the following ones pass */
    release(): void {
        this.holding = false
        for (const go of this.waiting.splice(0)) go()
    }

    /** resolves once `n` writes in all have reached the store */
    reached(n: number): Promise<void> {
        if (this.entered >= n) return Promise.resolve()
        return new Promise((resolve) => {
            const check = () => {
                if (this.entered >= n) resolve()
                else this.arrivals.push(check)
            }
            this.arrivals.push(check)
        })
    }

    private async write(target: Store, feed: number, points: Parameters<Store["writePoints"]>[1]) {
        this.entered++
        for (const f of this.arrivals.splice(0)) f()
        if (this.holds === "before-commit") await this.gate()
        const told = new Later<StoredPoint[]>()
        const out = await (target.writePoints(feed, points, undefined, undefined, told) ?? told)
        this.committed++
        if (this.holds === "after-commit") await this.gate()
        return out
    }

    private async gate(): Promise<void> {
        if (this.holding) await new Promise<void>((go) => this.waiting.push(go))
    }
}
