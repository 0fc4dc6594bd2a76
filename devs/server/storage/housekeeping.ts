// When the SQLite writer thread's own compaction of the ingest journal (point-writer.ts) yields to writes.
// It runs only when no message waits, but a write that comes during it waited for all of it (~5 ms for
// 4000 points on a quiet machine, 10–70 ms at load 7–11: a fleet's p99.9; performance-history.md, "The writer
// thread's housekeeping and the ack tail"); now it stops after a chunk (COMPACT_CHUNK_ROWS) instead, while
// the writer is not busy.

/**
 * Points per commit (the recent average) from which the thread's compactions run whole instead of
 * stopping when a write comes. Below it writes come one or a few at a time and each would wait for the
 * whole compaction (~5 ms at 4000 points on a quiet machine, 15–45 ms at load 6–9: the p99.9 of a fleet's
 * acknowledgements). From it the thread is busy (writes gather while it commits: ~2 a commit at 1000/s,
 * 11–19 at 10,000/s, hundreds in a closed loop), a write waits for the commits before it anyway, and a
 * compaction stopped at every write would commit the pages of each chunk apart: ~twice its CPU per point.
 */
export const WHOLE_COMPACTION_POINTS_PER_COMMIT = 8

/** Whether a compaction stops after a chunk when a write comes, at this recent average of points per commit. */
export function compactionYields(recentPointsPerCommit: number): boolean {
    return recentPointsPerCommit < WHOLE_COMPACTION_POINTS_PER_COMMIT
}

/** The recent average of points per commit after one more commit of `points` (exponential, the last ~10 commits). */
export function averagePointsPerCommit(recent: number, points: number): number {
    return recent + (points - recent) / 8
}

/** Bytes of the WAL-index header read (the header's two copies, then the checkpoint information). */
