// [P§6] Which refusals of a write a client sends again unchanged, after retry_after_ms: those that say nothing of it
// was stored. Import-free: `feedline put` (sendRetrying) and the dashboard page (served as /resend.js).

/**
 * 503 answers after which the write may be stored, whole (E_OUTCOME_UNKNOWN) or its values (E_PARTLY_WRITTEN): sent
 * again unchanged, a point without `at` (every `feedline put id=value` and the dashboard's writes) is stored twice
 * under a new stamp, and pushed twice, where the server's reason says what to send, if anything.
 */
const MAYBE_STORED: readonly string[] = ["E_OUTCOME_UNKNOWN", "E_PARTLY_WRITTEN"]

/** Whether a request answered `status` with the error `code` may be sent again as it was, after retry_after_ms. */
export function sendAgainAsIs(status: number, code: unknown): boolean {
    return status === 429 || (status === 503 && !MAYBE_STORED.includes(code as string))
}
