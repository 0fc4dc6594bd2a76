// Preloaded into `devs run` (NODE_OPTIONS=--require) by `npm start` (devs/start.ts: the simulated boards keep
// their claimed key across runs) and by test/e2e/firmware-harness.ts when a test gives the
// simulated device a flash file (FEEDLINE_SIM_FLASH): the device's flash (program and settings) is loaded
// from that file at start and saved to it on every write, so a test can reboot the device (end one run,
// start another on the same file) and find its flash as a real board keeps it, while RAM starts empty.
// `devs run --test` gives the VM no flash storage; the VM module (emscripten) looks up `flashLoad` and
// `flashSave` on its instance, a plain object the CLI sets up. This hook catches that instance when the
// CLI assigns its panic handler (before devsStart, where flash is loaded) and gives it both functions,
// then removes itself.
const fs = require("node:fs")

const file = process.env.FEEDLINE_SIM_FLASH
if (file) {
    Object.defineProperty(Object.prototype, "panicHandler", {
        configurable: true,
        set(handler) {
            delete Object.prototype.panicHandler
            Object.defineProperty(this, "panicHandler", { value: handler, writable: true, configurable: true, enumerable: true })
            this.flashLoad = () => {
                try {
                    return new Uint8Array(fs.readFileSync(file))
                } catch {
                    return new Uint8Array(0)
                }
            }
            // the flash holds the key the board claimed: owner-only, as every file of the data folder
            this.flashSave = (buf) => fs.writeFileSync(file, buf, { mode: 0o600 })
        },
    })
}
