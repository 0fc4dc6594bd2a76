// Database and Redis URLs carry passwords; messages and logs name them without.

/** The URL without its password, for messages. */
export function redactedUrl(url: string): string {
    try {
        const u = new URL(url)
        if (u.password) u.password = "***"
        return u.toString()
    } catch {
        return "(an unreadable URL)"
    }
}
