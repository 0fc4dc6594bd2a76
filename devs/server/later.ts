// A value that comes later to one listener, called the moment it is settled: the device hot path's way from
// the writer thread's answer to the session's acknowledgement (store → writeAndPublish → router → session),
// which as promises cost a promise, its reactions and a microtask step per link (performance-history.md,
// "The answer's way back as callbacks"). Not a promise: one listener, called synchronously by whoever
// settles it, so a listener must not throw. It is a thenable as well, so that a Later that reaches
// promise-land (await, a `.then` callback's return) is adopted as a promise would be.

/** Hears a Later's outcome (or any one-shot outcome): neither may throw. */
export interface Settles<T> {
    resolve(value: T): void
    reject(e: unknown): void
}

const PENDING = 0
const RESOLVED = 1
const REJECTED = 2

export class Later<T> implements Settles<T>, PromiseLike<T> {
    private state: typeof PENDING | typeof RESOLVED | typeof REJECTED = PENDING
    private outcome: unknown
    private listener?: Settles<T>

    resolve(value: T): void {
        if (this.state !== PENDING) return
        this.state = RESOLVED
        this.outcome = value
        this.listener?.resolve(value)
    }

    reject(e: unknown): void {
        if (this.state !== PENDING) return
        this.state = REJECTED
        this.outcome = e
        this.listener?.reject(e)
    }

    /** `to` hears the outcome: now when settled already, else when it is. One listener. */
    listen(to: Settles<T>): void {
        if (this.listener !== undefined) throw new Error("a Later has one listener")
        this.listener = to
        if (this.state === RESOLVED) to.resolve(this.outcome as T)
        else if (this.state === REJECTED) to.reject(this.outcome)
    }

    /** As a promise (takes the one listener): for await and for code that chains. */
    then<A = T, B = never>(onResolved?: ((value: T) => A | PromiseLike<A>) | null, onRejected?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
        return new Promise<T>((resolve, reject) => this.listen({ resolve, reject })).then(onResolved, onRejected)
    }
}

/** `p`'s outcome to `to`: at once for a Later, after the promise's step for a promise. */
export function listenTo<T>(p: Promise<T> | Later<T>, to: Settles<T>): void {
    if (p instanceof Later) p.listen(to)
    else p.then((v) => to.resolve(v), (e: unknown) => to.reject(e))
}
