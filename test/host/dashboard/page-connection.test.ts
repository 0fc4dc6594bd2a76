// The dashboard page's connection (devs/dashboard/connection.js) in Node, without a browser: its WebSocket is a
// fake the test speaks for, and its shared modules ("./protocol.js", "./subscription-cursor.js", …) are the
// TypeScript the server compiles for the page (devs/dashboard/static.ts SHARED_TS), mapped by a resolve hook.
// What a subscription does when the server's seqs go back, or when a cut replay's last point cannot be read [P§8].
import { test } from "node:test"
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { register } from "node:module"
import { pathToFileURL } from "node:url"
import { encodeResponse, encodeWelcome } from "../../../src/protocol.ts"
import { until } from "../harness/until.ts"

const REPO = new URL("../../../", import.meta.url)
/** the page's "./x.js" -> the file the server compiles it from, as static.ts serves them */
const shared: Record<string, string> = {}
for (const m of readFileSync(new URL("devs/dashboard/static.ts", REPO), "utf8").matchAll(/"\/([\w-]+\.js)":\s*"((?:src|devs\/client)\/[\w/.-]+\.ts)"/g)) {
    shared["./" + m[1]] = new URL(m[2], REPO).href
}
assert.ok(shared["./subscription-cursor.js"], "static.ts serves the subscription cursor")
const hook = `const SHARED = ${JSON.stringify(shared)}
export async function resolve(spec, context, next) {
    if (context.parentURL?.endsWith("/devs/dashboard/connection.js") && SHARED[spec]) return next(SHARED[spec], context)
    return next(spec, context)
}`
register("data:text/javascript," + encodeURIComponent(hook), import.meta.url)

/** The page's side of a WebSocket: what the page sent, and a way to hand it lines as the server would. */
class FakeWebSocket {
    static OPEN = 1
    static opened: FakeWebSocket[] = []
    readyState = FakeWebSocket.OPEN
    sent: any[] = []
    onmessage?: (ev: { data: string }) => void
    onclose?: () => void
    constructor(readonly url: string) {
        FakeWebSocket.opened.push(this)
    }
    send(text: string) {
        if (text.trim()) this.sent.push(JSON.parse(text))
    }
    close() {
        this.readyState = 3
        this.onclose?.()
    }
    /** the server says `line` */
    line(line: string) {
        this.onmessage?.({ data: line })
    }
}
;(globalThis as any).WebSocket = FakeWebSocket
const { PageConnection } = await import(pathToFileURL(new URL("devs/dashboard/connection.js", REPO).pathname).href)

const R = "/feeds/1/datastreams/t"
const at = (s: number) => `2026-11-22T05:00:0${s}.000Z`

/** A page connection that got its welcome (keep-alive `timeout` 1 s) and hears a heartbeat every 50 ms until stop(). */
function connectedPage() {
    FakeWebSocket.opened.length = 0
    const page = new PageConnection("ws://test/ws", () => "Bearer t")
    page.start()
    const ws = FakeWebSocket.opened[0]
    ws.line(encodeWelcome({ welcome: "feedline/test", session: "s1", time: Date.parse(at(0)), heartbeat: 300, faulty: 600, timeout: 1000 }))
    const beat = setInterval(() => ws.line(""), 50)
    const warnings: string[] = []
    const warn = console.warn
    console.warn = (...a: unknown[]) => void warnings.push(a.join(" "))
    return {
        page,
        ws,
        warnings,
        answer: (token: string, body: unknown) => ws.line(encodeResponse({ token, status: 200, resource: R, body })),
        push: (token: string, body: unknown) => ws.line(encodeResponse({ token, status: 200, resource: R, body })),
        /** the requests the page sent with this method */
        sent: (method: string) => ws.sent.filter((q) => q.method === method),
        stop() {
            clearInterval(beat)
            console.warn = warn
            page.stop()
        },
    }
}

test("a push whose seq went back on a live connection (seq 5 below 102, its at newer than every one shown): the page ends that subscription and asks again under another token, so the old one's pushes still on the wire are not taken for the new one's; what was missed is shown once, in order [P§8]", async () => {
    const p = connectedPage()
    const got: string[] = []
    const rewinds: unknown[] = []
    p.page.addEventListener("rewound", (e: any) => rewinds.push(e.detail))
    try {
        p.page.subscribe(R, undefined, (push: any) => got.push(push.body.current_value))
        const first = p.sent("subscribe")[0]
        assert.equal(first.params.after, "latest")
        p.answer(first.token, { seq: 100 })
        p.push(first.token, { id: "t", current_value: "a", at: at(1), seq: 101 })
        p.push(first.token, { id: "t", current_value: "b", at: at(2), seq: 102 })
        // the store failed over to a replica restored from before 101; a command (seq 5) was written to it, then y (seq 6)
        p.push(first.token, { id: "t", current_value: "x", at: at(3), seq: 5 })
        // y, pushed by the first subscription before the server read the page's next requests
        p.push(first.token, { id: "t", current_value: "y", at: at(5), seq: 6 })
        assert.deepEqual(rewinds, [{ resource: R, fromSeq: 102, seq: 4, since: at(2) }])
        assert.deepEqual(p.sent("unsubscribe").map((q) => q.params), [{ token: first.token }])
        const rest = p.sent("subscribe")[1]
        assert.notEqual(rest.token, first.token, "asked again under another token")
        assert.deepEqual(rest.params, { since: at(2), after: 4 })
        p.answer(rest.token, { seq: 4, replayed: 0, truncated: true, next_after: 4 })
        const live = p.sent("subscribe")[2]
        assert.deepEqual(live.params, { after: 4 })
        p.answer(live.token, { seq: 6 })
        p.push(live.token, { id: "t", current_value: "x", at: at(3), seq: 5 })
        p.push(live.token, { id: "t", current_value: "y", at: at(5), seq: 6 })
        // before: y, under the reused token, was taken for the new subscription's push and shown before x, written before it
        assert.deepEqual(got, ["a", "b", "x", "y"])
    } finally {
        p.stop()
    }
})

test("a replay bounded by a cursor whose last point cannot be read (\\uFFFE: a bad line) is skipped after the link's timeout; the page goes on by after and follows live pushes, where before it waited for that point for ever [P§8]", async () => {
    const p = connectedPage()
    const got: string[] = []
    /** a push as a store written before U+FFFE was refused sends it: the escape in the JSON text */
    const unreadable = (token: string, s: number, seq?: number) =>
        `{"token":"${token}","status":200,"resource":"${R}","body":{"id":"t","current_value":"1\\ufffe","at":"${at(s)}"${seq === undefined ? "" : `,"seq":${seq}`}}}`
    try {
        p.page.subscribe(R, at(0), (push: any) => got.push(push.body.current_value))
        const first = p.sent("subscribe")[0]
        assert.deepEqual(first.params, { since: at(0), after: "latest" })
        p.answer(first.token, { replayed: 2, truncated: true, next_since: at(2), next_after: 50 })
        p.push(first.token, { id: "t", current_value: "a", at: at(1) })
        p.ws.line(unreadable(first.token, 2))
        const rest = await until("the page to go on from next_since", () => p.sent("subscribe")[1], 10_000)
        assert.deepEqual(rest.params, { since: at(2), after: 50 })
        p.answer(rest.token, { seq: 50, replayed: 1, truncated: true, next_after: 50 })
        p.ws.line(unreadable(rest.token, 3, 44))
        const live = await until("the page to go on by after", () => p.sent("subscribe")[2], 10_000)
        assert.deepEqual(live.params, { after: 50 })
        p.answer(live.token, { seq: 50 })
        p.push(live.token, { id: "t", current_value: "c", at: at(5), seq: 51 })
        assert.deepEqual(got, ["a", "c"])
        assert.equal(FakeWebSocket.opened.length, 1, "on the same WebSocket")
        assert.equal(p.warnings.filter((w) => /could not be read/.test(w)).length, 2, p.warnings.join("\n"))
    } finally {
        p.stop()
    }
})
