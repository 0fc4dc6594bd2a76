// The keys that pass an address's failed-key lockout (auth/proven-keys.ts): only those proven from that
// address, for a while, in bounded memory.
import assert from "node:assert/strict"
import { test } from "node:test"
import { ProvenKeys } from "../../../../devs/server/auth/proven-keys.ts"
import { Router } from "../../../../devs/server/router.ts"
import type { Caller, RouterDeps } from "../../../../devs/server/context.ts"

test("proven keys: a key passes only from the address it was proven from, until its ttl ends", () => {
    const p = new ProvenKeys(10, 1000)
    p.proven("10.0.0.1", "good-key", 5000)
    assert.equal(p.passes("10.0.0.1", "good-key", 5999), true)
    assert.equal(p.passes("10.0.0.2", "good-key", 5000), false, "another address")
    assert.equal(p.passes("10.0.0.1", "other-key", 5000), false, "another key")
    assert.equal(p.passes("10.0.0.1", "good-key", 6000), false, "ttl over")
    assert.equal(p.size, 0, "an expired pass is forgotten when asked about")
})

test("proven keys: proving again renews the pass; a failure ends it", () => {
    const p = new ProvenKeys(10, 1000)
    p.proven("a", "k", 0)
    p.proven("a", "k", 900)
    assert.equal(p.passes("a", "k", 1500), true)
    p.failed("a", "k")
    assert.equal(p.passes("a", "k", 1500), false)
})

test("proven keys: memory stays bounded; the least recently proven are forgotten first", () => {
    const p = new ProvenKeys(100, 60_000)
    for (let i = 0; i < 1000; ++i) p.proven(`10.0.${i >> 8}.${i & 255}`, `key-${i}`, 0)
    assert.equal(p.size, 100)
    assert.equal(p.passes("10.0.3.231", "key-999", 1), true)
    assert.equal(p.passes("10.0.3.132", "key-900", 1), true)
    assert.equal(p.passes("10.0.3.131", "key-899", 1), false)
    // a pass proven again moves to the newest end and survives the next insertions
    const q = new ProvenKeys(3, 60_000)
    q.proven("a", "k1", 0)
    q.proven("a", "k2", 0)
    q.proven("a", "k1", 1)
    q.proven("a", "k3", 2)
    q.proven("a", "k4", 3)
    assert.deepEqual(["k1", "k2", "k3", "k4"].map((k) => q.passes("a", k, 4)), [true, false, true, true])
})

test("proven keys: a connection that closes renews its key's pass from its address (its reconnect after a long connection)", () => {
    let nowMs = 1000
    const router = new Router({ elapsedMs: () => nowMs } as unknown as RouterDeps) // the pass is on the monotonic clock
    const caller = (grant: object | undefined) => ({ transport: "tls", remoteAddress: "10.0.0.7", connection: { rememberedKey: "device-key", grant } }) as unknown as Caller
    nowMs = 10 * 24 * 60 * 60_000 // connected for ten days
    router.connectionClosed(caller({ keyId: "k1" }))
    assert.equal(router.provenKeys.passes("10.0.0.7", "device-key", nowMs + 60_000), true)
    // a browser token is not remembered (it expires soon and each one differs), nor a connection without a key
    router.connectionClosed({ ...caller({ keyId: "k1", bearer: true }), remoteAddress: "10.0.0.8" } as Caller)
    router.connectionClosed({ ...caller(undefined), remoteAddress: "10.0.0.9" } as Caller)
    assert.equal(router.provenKeys.size, 1)
})
