// The bus of a server that is the only process on its store: nothing crosses anything. Its hub has every
// change already, its sessions are all the sessions, and the per-key budget is a bucket in memory.
import { hostname } from "node:os"
import { randomBytes } from "node:crypto"
import { MAX_TRACKED_KEYS } from "../limits.ts"
import { Buckets, type BucketConfig } from "../ratelimit.ts"
import type { Grant } from "../auth/grant.ts"
import type { Bus, KeyRate, SessionDirectory, SessionEntry } from "./bus.ts"

/** A name for this process, unique among the processes of one store: host, pid and a random part (pids repeat across restarts and hosts). */
export function newProcessId(): string {
    return `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`
}

export class LocalBus implements Bus {
    readonly kind = "local"
    readonly processId = newProcessId()

    publish(): void {}
    onMessage(): void {}
    onInterrupted(): void {}

    sessionDirectory(local: (viewer?: Grant) => SessionEntry[]): SessionDirectory {
        return { list: async (viewer) => local(viewer), close: async () => {} }
    }

    keyRate(config: BucketConfig): KeyRate {
        return new Buckets(config, MAX_TRACKED_KEYS)
    }

    async close(): Promise<void> {}
}
