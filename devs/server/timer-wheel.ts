// [P§4] One timer for the keep-alive checks of every connection, instead of one per connection: due
// times are rounded up to slots of `slotMs`, and while anything is scheduled one Node interval ticks
// once a slot and runs everything due. With a thousand connections heartbeating every 300 ms that is one wake-up
// per slot instead of one timer (and its re-arming) per connection and beat. A tick moves the wheel on by
// at least one slot, and by the monotonic clock when it ran late, so it keeps time with setTimeout's
// (node:test's mock timers included); what a callback decides stays with its own clock.

/** Keep-alive checks run up to this late: small beside the 300 ms heartbeat and the 1 s `faulty` [P§4]. */
export const KEEPALIVE_SLOT_MS = 20

/**
 * What the wheel schedules: an object, so that re-scheduling it allocates nothing. A session is its own
 * entry (no timer object and callback closure per connection); `WheelTimer` wraps a plain callback.
 */
export interface WheelEntry {
    /** the slot it waits in; undefined when not scheduled (the wheel's to set) */
    slot?: number
    /** called once when its slot is due */
    onWheel(): void
}

/** A callback as a wheel entry. */
export class WheelTimer implements WheelEntry {
    slot?: number
    constructor(private readonly run: () => void) {}
    onWheel(): void {
        this.run()
    }
}

export class TimerWheel {
    private readonly slots = new Map<number, Set<WheelEntry>>()
    /** slot numbers that got a set, smallest first (a binary heap; emptied slots are skipped when reached) */
    private readonly heap: number[] = []
    private timer?: NodeJS.Timeout
    /** the last slot run */
    private current = 0
    private readonly fire = () => this.runDue()

    constructor(
        private readonly slotMs = KEEPALIVE_SLOT_MS,
        private readonly clock: () => number = () => performance.now(),
    ) {}

    /** Runs `t` in `inMs`, less than one slot later; replaces when it was scheduled. Never in the slot running now, so a callback that schedules itself again cannot spin. */
    schedule(t: WheelEntry, inMs: number): void {
        this.cancel(t)
        // the wheel's time: the clock, or the last slot run when ticks ran ahead of it (mock timers)
        const nowMs = Math.max(this.clock(), this.current * this.slotMs)
        const slot = Math.max(this.current + 1, Math.ceil((nowMs + Math.max(0, inMs)) / this.slotMs))
        let set = this.slots.get(slot)
        if (!set) {
            this.slots.set(slot, (set = new Set()))
            heapPush(this.heap, slot)
        }
        set.add(t)
        t.slot = slot
        if (!this.timer) this.arm()
    }

    cancel(t: WheelEntry): void {
        if (t.slot === undefined) return
        const set = this.slots.get(t.slot)
        if (set) {
            set.delete(t)
            if (set.size === 0) this.slots.delete(t.slot)
        }
        t.slot = undefined
    }

    /** timers scheduled */
    get size(): number {
        let n = 0
        for (const set of this.slots.values()) n += set.size
        return n
    }

    private arm(): void {
        this.current = Math.max(this.current, Math.floor(this.clock() / this.slotMs))
        this.timer = setInterval(this.fire, this.slotMs)
        this.timer.unref() // connections keep the process alive, not their keep-alive checks
    }

    private runDue(): void {
        this.current = Math.max(this.current + 1, Math.floor(this.clock() / this.slotMs))
        const nowSlot = this.current
        while (this.heap.length && this.heap[0] <= nowSlot) {
            const slot = heapPop(this.heap)
            const set = this.slots.get(slot)
            if (!set) continue
            this.slots.delete(slot)
            for (const t of set) {
                t.slot = undefined
                t.onWheel()
            }
        }
        // skip emptied slots; tick on while anything is scheduled
        while (this.heap.length && !this.slots.has(this.heap[0])) heapPop(this.heap)
        if (this.heap.length === 0 && this.timer) {
            clearInterval(this.timer)
            this.timer = undefined
        }
    }
}

function heapPush(h: number[], v: number): void {
    let i = h.push(v) - 1
    while (i > 0) {
        const parent = (i - 1) >> 1
        if (h[parent] <= v) break
        h[i] = h[parent]
        i = parent
    }
    h[i] = v
}

function heapPop(h: number[]): number {
    const top = h[0]
    const last = h.pop()!
    if (h.length === 0) return top
    let i = 0
    for (;;) {
        const l = 2 * i + 1
        if (l >= h.length) break
        const r = l + 1
        const c = r < h.length && h[r] < h[l] ? r : l
        if (h[c] >= last) break
        h[i] = h[c]
        i = c
    }
    h[i] = last
    return top
}
