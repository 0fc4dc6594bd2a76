// How a benchmark script runs its main: the process ends through process.exit, so the targets' exit hooks
// stop the servers they started, on Ctrl-C or SIGTERM (status 130) as on a failure (printed, status 1).
export function runEntry(main: () => Promise<unknown>): void {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130))
    main().catch((e) => {
        console.error(e)
        process.exit(1)
    })
}
