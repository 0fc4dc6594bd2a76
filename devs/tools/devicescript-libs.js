// `postinstall`: builds the firmware's DeviceScript libraries into node_modules/@devicescript/ (`devs build
// src/main.ts`), which the firmware's compile, simulator and tests need. The DeviceScript CLI is a
// devDependency: a production install (`npm ci --omit=dev`), which runs only the server, has none, and this
// step is skipped with a line saying so. Plain JavaScript run by node: no tsx there either.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** the package's folder: this file is devs/tools/devicescript-libs.js */
const ROOT = fileURLToPath(new URL("../..", import.meta.url))
/** the `devs` command of @devicescript/cli, from this package's own node_modules */
const DEVS = join(ROOT, "node_modules/@devicescript/cli/devicescript")

if (!existsSync(DEVS)) {
    process.stderr.write("feedline: not building the firmware's DeviceScript libraries: @devicescript/cli (a devDependency) is not installed, as in a production install (npm ci --omit=dev); the server does not need them\n")
    process.exit(0)
}
const devs = spawnSync(process.execPath, [DEVS, "build", "src/main.ts", "--quiet"], { cwd: ROOT, stdio: "inherit" })
process.exit(devs.status ?? 1)
