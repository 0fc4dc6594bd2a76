// devs/tools/sim-flash.cjs keeps a simulated board's flash in a file of the data folder (`npm start`): the
// board's settings, among them the API_KEY it claimed. The data folder is owner-only (docs/OPERATIONS.md),
// so the file must be made 0600 whatever the umask, not 0644 for a later start to narrow.
import { test } from "node:test"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"

const execFileAsync = promisify(execFile)
const HOOK = new URL("../../../devs/tools/sim-flash.cjs", import.meta.url).pathname
/** what the DeviceScript CLI does to the VM instance: assigns its panic handler, then saves and loads flash */
const VM = `const vm = {}; vm.panicHandler = () => {}; vm.flashSave(new Uint8Array([1, 2, 3])); process.stdout.write(String(vm.flashLoad().length))`

test("the simulated board's flash file is made owner-only (0600) under a umask of 022", async () => {
    const dir = mkdtempSync(join(tmpdir(), "feedline-simflash-"))
    try {
        const file = join(dir, "sim-board-1.flash")
        const { stdout } = await execFileAsync("sh", ["-c", `umask 022 && exec "$0" --require "$1" -e "$2"`, process.execPath, HOOK, VM], {
            env: { ...process.env, FEEDLINE_SIM_FLASH: file },
        })
        assert.equal(stdout, "3", "what was saved loads back")
        assert.deepEqual([...readFileSync(file)], [1, 2, 3])
        assert.equal(statSync(file).mode & 0o777, 0o600, "the flash holds the claimed key: owner-only")
    } finally {
        rmSync(dir, { recursive: true, force: true })
    }
})
