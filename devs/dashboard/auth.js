// The page's credential: a short-lived token from POST /jwt [P§7]. The API key a person types is sent
// once to /jwt and then dropped; only the token is kept (sessionStorage: gone when the tab closes). The
// token is renewed from itself before it expires, so an open page keeps working for as long as the key
// stays valid and the sign-in is younger than its maximum age (24 h by default); revoking the key or
// signing out ends it.

const STORAGE_KEY = "feedline.token"
/** renew this long before expiry (the server's RENEW_BEFORE_MS), or at 80% of a shorter token's life */
const RENEW_BEFORE_MS = 30 * 60 * 1000
/** a failed renewal is retried this often until the token runs out */
const RENEW_RETRY_MS = 30 * 1000

/** The claims of a JWT, read without verifying (the server verifies; we only need `exp` for scheduling). */
function claimsOf(token) {
    try {
        const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")
        return JSON.parse(atob(part))
    } catch {
        return {}
    }
}

export class Auth extends EventTarget {
    constructor() {
        super()
        this.token = undefined
        this.expiresMs = 0
        // a link can carry a token in its fragment (never sent to a server): #token=<jwt>
        const m = /(?:^#|&)token=([A-Za-z0-9_\-.]+)/.exec(location.hash)
        if (m) {
            this.store(m[1])
            history.replaceState(null, "", location.pathname + location.search)
        } else {
            const saved = sessionStorage.getItem(STORAGE_KEY)
            if (saved) this.store(saved)
        }
    }

    get signedIn() {
        return this.token !== undefined
    }

    /** the X-ApiKey value for requests */
    credential() {
        return this.token ? "Bearer " + this.token : undefined
    }

    store(token) {
        this.token = token
        this.expiresMs = (claimsOf(token).exp || 0) * 1000
        sessionStorage.setItem(STORAGE_KEY, token)
        this.scheduleRenewal()
        this.dispatchEvent(new CustomEvent("change"))
    }

    async signIn(apiKey) {
        const r = await fetch("jwt", { method: "POST", headers: { "X-ApiKey": apiKey } })
        const body = await r.json().catch(() => ({}))
        if (!r.ok) throw new Error(body.errors || `sign-in failed (HTTP ${r.status})`)
        this.store(body.token)
    }

    async renew() {
        if (!this.token) return
        try {
            const r = await fetch("jwt", { method: "POST", headers: { Authorization: "Bearer " + this.token } })
            const body = await r.json().catch(() => ({}))
            // the sign-in reached its maximum age: no renewal, but the token works until it expires
            if (r.status === 401 && body.code === "E_TOKEN_MAX_AGE") return this.expireAt(this.expiresMs, body.errors)
            if (r.status === 401) return this.expire(body.errors || "the token was refused")
            if (!r.ok) throw new Error(body.errors || `HTTP ${r.status}`)
            this.store(body.token)
            this.dispatchEvent(new CustomEvent("renewed"))
        } catch (e) {
            // network trouble: try again while the token lasts
            if (Date.now() < this.expiresMs) this.renewTimer = setTimeout(() => this.renew(), RENEW_RETRY_MS)
        }
    }

    scheduleRenewal() {
        clearTimeout(this.renewTimer)
        if (!this.expiresMs) return
        const claims = claimsOf(this.token)
        const lifeMs = claims.iat ? this.expiresMs - claims.iat * 1000 : RENEW_BEFORE_MS * 5
        const renewAt = this.expiresMs - Math.min(RENEW_BEFORE_MS, lifeMs * 0.2)
        const delay = renewAt - Date.now()
        // an already expired token is not renewed here: the server's refusal tells the person why
        if (delay > 0) this.renewTimer = setTimeout(() => this.renew(), Math.min(delay, 2 ** 31 - 1))
        else if (Date.now() < this.expiresMs) this.renew()
    }

    /** Signs out when the token runs out, with `reason`. */
    expireAt(ms, reason) {
        clearTimeout(this.renewTimer)
        this.renewTimer = setTimeout(() => this.expire(reason), Math.min(Math.max(0, ms - Date.now()), 2 ** 31 - 1))
    }

    /** The server refused the token: forget it and ask the person to sign in again. */
    expire(reason) {
        this.clear()
        this.dispatchEvent(new CustomEvent("expired", { detail: reason }))
    }

    async signOut() {
        const token = this.token
        this.clear()
        if (token) await fetch("jwt", { method: "DELETE", headers: { Authorization: "Bearer " + token } }).catch(() => {})
        this.dispatchEvent(new CustomEvent("change"))
    }

    clear() {
        clearTimeout(this.renewTimer)
        this.token = undefined
        this.expiresMs = 0
        sessionStorage.removeItem(STORAGE_KEY)
    }
}
