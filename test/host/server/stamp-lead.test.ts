// [P§9] Server stamps that run ahead of the clock are shown to the operator: a stamped write whose stamp
// leads the server's clock by more than STAMP_LEAD_WARN_MS is counted (feedline_stamps_ahead_total) and
// logged, at most once a minute with how many it stood for; feedline_stamp_lead_seconds has the most any
// led since the previous scrape. The rules on their own (time passed in), then a running server whose
// clock the test sets: put back 5 s after a stamped write, the next stamp is the feed's last + 1.
import assert from "node:assert/strict"
import { Writable } from "node:stream"
import { test } from "node:test"
import { STAMP_LEAD_WARN_MS } from "../../../devs/server/limits.ts"
import { newestStampOf, StampLead, type StampLeadWarning } from "../../../devs/server/stamp-lead.ts"
import { http, startTestServer } from "../harness/server-harness.ts"

test("a stamp leading the clock by more than the bound is reported each time, warned at most once per period with how many it stood for", () => {
    const seen: StampLeadWarning[] = []
    const lead = new StampLead(1000, 60_000, (w) => seen.push(w))
    lead.observe(1, 10_500, 10_000) // 500 ms ahead: within the bound
    assert.deepEqual(seen, [])
    lead.observe(1, 12_001, 11_000)
    lead.observe(2, 14_000, 12_000)
    lead.observe(1, 80_000, 71_000) // a minute after the first warning
    assert.deepEqual(seen, [
        { feed: 1, leadMs: 1001, writes: 1 },
        { feed: 2, leadMs: 2000, writes: 0 },
        { feed: 1, leadMs: 9000, writes: 2 },
    ])
    assert.equal(lead.takeMostMs(), 9000)
    assert.equal(lead.takeMostMs(), 0, "from 0 again after each look")
    lead.observe(1, 5, 10)
    assert.equal(lead.takeMostMs(), 0, "a stamp behind the clock leads by nothing")
})

test("only a write whose points the server stamped, all of them, has a stamp to compare", () => {
    assert.equal(newestStampOf([{}, {}], [{ atMs: 7 }, { atMs: 9 }]), 9)
    assert.equal(newestStampOf([{}, { atMs: 99_999 }], [{ atMs: 7 }, { atMs: 99_999 }]), undefined, "a device's own `at` says nothing about the server's stamps")
    assert.equal(newestStampOf([{}], []), undefined)
})

test("a running server: a stamped write 5 s ahead of its clock is counted, logged and in the gauge; one on time is not", async (t) => {
    let nowMs = Date.UTC(2026, 10, 22, 5, 0, 0)
    const lines: any[] = []
    const logDestination = new Writable({
        write(chunk, _enc, done) {
            for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l))
            done()
        },
    })
    const s = await startTestServer({ now: () => nowMs, logLevel: "warn", logDestination })
    t.after(() => s.stop())
    const put = (value: string) =>
        http(s, "PUT", `/v2/feeds/${s.credentials.feedId}`, { key: s.credentials.deviceKey, body: { datastreams: [{ id: "cmd", current_value: value }] } })
    const metric = async (name: string) => Number(String((await http(s, "GET", "/metrics")).body).match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1])
    const warnings = () => lines.filter((l) => l.feed === s.credentials.feedId && l.leadMs !== undefined)

    assert.equal((await put("on time")).status, 200)
    assert.equal(await metric("feedline_stamps_ahead_total"), 0)
    assert.deepEqual(warnings(), [])
    // the clock put back 5 s (as by a process whose clock is behind another's): the next stamp is the last + 1
    nowMs -= 5000
    assert.equal((await put("ahead")).status, 200)
    assert.equal(await metric("feedline_stamps_ahead_total"), 1)
    assert.equal(await metric("feedline_stamp_lead_seconds"), 0, "read by the scrape before")
    assert.equal((await put("ahead again")).status, 200)
    assert.ok((await metric("feedline_stamp_lead_seconds")) > STAMP_LEAD_WARN_MS / 1000)
    const w = warnings()
    assert.equal(w.length, 1, "the second within the minute is counted, not logged")
    assert.equal(w[0].level, 40)
    assert.ok(w[0].leadMs > STAMP_LEAD_WARN_MS)
})
