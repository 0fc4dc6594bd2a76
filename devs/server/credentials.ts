// A fresh data folder gets a master key, a first feed and a device key (read + update on that feed),
// written once to <dataDir>/credentials.json (mode 0600) where `npm start` and the simulator read them.
// Only hashes are in the database: this file is the one place the plain keys are kept. Several processes
// starting at once call this one at a time (startServer holds the data folder's lock and the store's
// provisioning lock): the first makes them, the others find the file, or, on another host's data folder,
// find the master key in the shared database and make nothing.
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import type { KeyRing } from "./auth/keys.ts"
import { StoreError, type Store } from "./storage/store.ts"
import { isoOf } from "./time.ts"
import { writeFileWhole } from "./write-whole.ts"

export interface Credentials {
    masterKey: string
    feedId: number
    deviceKey: string
}

/** The file's format. */
export interface CredentialsFile extends Credentials {
    masterKeyId: string
    deviceKeyId: string
    created: string
}

export const CREDENTIALS_FILE = "credentials.json"

export function credentialsPath(dataDir: string): string {
    return join(dataDir, CREDENTIALS_FILE)
}

/** Feed 1, or a new one when feed 1 was deleted (its id is never given out again). */
async function firstFeed(store: Store) {
    try {
        return await store.createFeed({ id: 1, title: "first feed" })
    } catch (e) {
        if (!(e instanceof StoreError && e.failure === "feed-id-retired")) throw e
        return store.createFeed({ title: "first feed" })
    }
}

/**
 * Returns the bootstrap credentials from the file, or makes them when there is no file and no master key.
 * `created` tells the caller to print them (once). When a master key exists but the file is gone, the
 * keys cannot be recovered (only hashes are stored): the fields are empty; use `feedline keys create`.
 */
export async function ensureCredentials(dataDir: string, store: Store, keys: KeyRing, now: () => number): Promise<{ credentials: Credentials; created: boolean }> {
    const path = credentialsPath(dataDir)
    if (existsSync(path)) {
        const f = JSON.parse(readFileSync(path, "utf8")) as CredentialsFile
        return { credentials: { masterKey: f.masterKey, feedId: f.feedId, deviceKey: f.deviceKey }, created: false }
    }
    if ((await store.listKeys()).some((k) => k.master && k.revokedMs === undefined)) {
        return { credentials: { masterKey: "", feedId: 0, deviceKey: "" }, created: false }
    }
    const feed = (await store.getFeed(1)) ?? (await firstFeed(store))
    const master = await keys.create({ label: "master", permissions: [], master: true })
    const device = await keys.create({ label: `device, feed ${feed.id}`, permissions: ["read", "update"], feeds: [feed.id] })
    const file: CredentialsFile = {
        masterKey: master.secret,
        masterKeyId: master.record.id,
        feedId: feed.id,
        deviceKey: device.secret,
        deviceKeyId: device.record.id,
        created: isoOf(now()),
    }
    writeFileWhole(path, JSON.stringify(file, null, 2) + "\n", 0o600)
    return { credentials: { masterKey: file.masterKey, feedId: file.feedId, deviceKey: file.deviceKey }, created: true }
}
