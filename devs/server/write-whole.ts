// A file others wait for or read at any moment (the credentials, --ready-file) is written beside itself and
// renamed into place: a reader sees the whole file or none, never a half-written one.
import { renameSync, writeFileSync } from "node:fs"

export function writeFileWhole(path: string, text: string, mode?: number): void {
    const tmp = `${path}.tmp`
    writeFileSync(tmp, text, mode === undefined ? undefined : { mode })
    renameSync(tmp, path)
}
