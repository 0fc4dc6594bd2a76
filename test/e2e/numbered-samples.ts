// The device app of the end-to-end tests that count samples and commands (zero-loss.test.ts,
// failover.test.ts): it numbers its samples (`seq` = 1, 2, 3, … every `sampleMs`, policy "every") and
// prints `produced n outbox d drops k` after each; it echoes every `cmd` push to `cmd_echo` and prints
// `handled cmd v`; the command "stop" ends the samples (`stopped at n drops k`).
export function numberedSamplesApp(sampleMs: number): string {
    return `
let produced = 0
let producing = true
link.subscribe("datastreams/cmd", (body) => {
    const v = body["current_value"]
    console.log("handled cmd " + v)
    link.report("cmd_echo", v)
    if (v === "stop") {
        producing = false
        console.log("stopped at " + produced + " drops " + link.stats().drops)
    }
})
setInterval(() => {
    if (!producing) return
    produced++
    link.report("seq", produced)
    const s = link.stats()
    console.log("produced " + produced + " outbox " + s.outbox + " drops " + s.drops)
}, ${sampleMs})
`
}
