// Fakes for the sensor/actuator ports: a recording sink, a command source that pushes on demand, a clock.
import { OutboxPolicy, SampleSink } from "../../src/foundation/ports"

export interface Report {
    id: string
    value: string
    policy: OutboxPolicy
}

export class RecordingSink implements SampleSink {
    reports: Report[] = []
    report(id: string, value: string, policy: OutboxPolicy) {
        this.reports.push({ id: id, value: value, policy: policy })
    }
    /** values reported on `id`, in order */
    values(id: string): string[] {
        return this.reports.filter(r => r.id === id).map(r => r.value)
    }
    last(id: string): string | undefined {
        const v = this.values(id)
        return v.length ? v[v.length - 1] : undefined
    }
    clear() {
        this.reports = []
    }
}

/** The link's subscriptions as io.ts sees them: pass `cmds.subscribe` as its `commands` (a CommandSource). */
export class FakeCommands {
    resources: string[] = []
    /** the `sinceAt` each subscription asked for */
    sinces: string[] = []
    private handlers: ((body: any) => void)[] = []
    subscribe(resource: string, handler: (body: any) => void, sinceAt?: string) {
        this.resources.push(resource)
        this.sinces.push(sinceAt)
        this.handlers.push(handler)
    }
    /** Delivers a push as the link would; false when nothing subscribed to `resource`. */
    push(resource: string, body: any): boolean {
        const i = this.resources.indexOf(resource)
        if (i < 0) return false
        this.handlers[i](body)
        return true
    }
}

export interface FakeClock {
    now: number
    read: () => number
}

/** A clock the test sets (`clock.now = 5000`); pass `clock.read` as the clock. */
export function fakeClock(): FakeClock {
    const c: FakeClock = { now: 0, read: undefined }
    c.read = () => c.now
    return c
}
