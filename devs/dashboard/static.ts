// The dashboard's files on the app port: the page, its modules, uPlot from node_modules (nothing is
// downloaded), and the shared import-free modules compiled for the browser, so the page speaks the
// protocol with the same code as the server and the firmware: /protocol.js (the envelope codec) and the
// client core, /keepalive.js, /requests.js, /subscription-cursor.js and /backoff.js, and the client library's
// /stamp-overlap.js.

import fs from "node:fs"
import type { IncomingMessage, ServerResponse } from "node:http"
import { createRequire } from "node:module"
import path from "node:path"
import { modulePath, PACKAGE_ROOT, RUNNING_COMPILED } from "../server/compiled.ts"

/** the page's own files are not compiled: they are read from the package in both cases */
const HERE = path.join(PACKAGE_ROOT, "devs/dashboard")
const UPLOT_DIST = path.join(path.dirname(createRequire(import.meta.url).resolve("uplot/package.json")), "dist")

const TYPES: Record<string, string> = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

/** URL path -> file. Only these are served: no directory walking, so no path tricks to worry about. */
const FILES: Record<string, string> = {
    "/": path.join(HERE, "index.html"),
    "/index.html": path.join(HERE, "index.html"),
    "/app.js": path.join(HERE, "app.js"),
    "/connection.js": path.join(HERE, "connection.js"),
    "/auth.js": path.join(HERE, "auth.js"),
    "/plots.js": path.join(HERE, "plots.js"),
    "/fleet.js": path.join(HERE, "fleet.js"),
    "/units.js": path.join(HERE, "units.js"),
    "/style.css": path.join(HERE, "style.css"),
    "/vendor/uPlot.iife.min.js": path.join(UPLOT_DIST, "uPlot.iife.min.js"),
    "/vendor/uPlot.min.css": path.join(UPLOT_DIST, "uPlot.min.css"),
}
/**
 * Import-free TypeScript modules the page shares with the firmware, server and CLI: the compiled server
 * serves their JavaScript from dist/ (the same build it runs); under tsx they are compiled on first request.
 */
const SHARED_TS: Record<string, string> = {
    "/protocol.js": "src/protocol.ts",
    "/keepalive.js": "src/keepalive.ts",
    "/requests.js": "src/requests.ts",
    "/subscription-cursor.js": "src/subscription-cursor.ts",
    "/backoff.js": "src/backoff.ts",
    // the client library's, import-free like the ones above
    "/stamp-overlap.js": "devs/client/stamp-overlap.ts",
    "/resend.js": "devs/client/resend.ts",
}

/**
 * The page loads only its own files and talks only to its own origin (WebSocket included); it cannot be
 * framed. uPlot sizes its elements with inline styles, hence style-src 'unsafe-inline'.
 */
const SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}

interface Asset {
    body: Buffer
    type: string
    etag: string
}

const cache = new Map<string, Asset>()

function asset(body: Buffer | string, type: string): Asset {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body)
    return { body: buf, type, etag: `"${buf.length.toString(16)}-${hash(buf)}"` }
}

function hash(b: Buffer): string {
    let h = 2166136261
    for (let i = 0; i < b.length; ++i) h = Math.imul(h ^ b[i], 16777619)
    return (h >>> 0).toString(16)
}

/** A shared module as an ES module: tsc's output when compiled, else types stripped by esbuild (tsx's compiler, present wherever tsx runs). */
async function compileShared(sourcePath: string): Promise<Asset> {
    if (RUNNING_COMPILED) return asset(fs.readFileSync(modulePath(sourcePath)), TYPES[".js"])
    const file = path.join(PACKAGE_ROOT, sourcePath)
    const source = fs.readFileSync(file, "utf8")
    const { transform } = await import("esbuild")
    const out = await transform(source, { loader: "ts", format: "esm", target: "es2020", sourcefile: path.basename(file) })
    return asset(out.code, TYPES[".js"])
}

async function load(urlPath: string): Promise<Asset | undefined> {
    const hit = cache.get(urlPath)
    if (hit) return hit
    let a: Asset
    if (SHARED_TS[urlPath]) a = await compileShared(SHARED_TS[urlPath])
    else {
        const file = FILES[urlPath]
        if (!file) return undefined
        a = asset(fs.readFileSync(file), TYPES[path.extname(file)] ?? "application/octet-stream")
    }
    cache.set(urlPath, a)
    return a
}

/** Serves the dashboard; resolves false for paths that are not its own (the server then answers 404). */
export async function serveDashboard(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    if (req.method !== "GET" && req.method !== "HEAD") return false
    const urlPath = new URL(req.url ?? "/", "http://localhost").pathname
    const a = await load(urlPath)
    if (!a) return false
    if (req.headers["if-none-match"] === a.etag) {
        res.writeHead(304, { etag: a.etag, ...SECURITY_HEADERS })
        res.end()
        return true
    }
    res.writeHead(200, { "content-type": a.type, "content-length": a.body.length, etag: a.etag, ...SECURITY_HEADERS })
    res.end(req.method === "HEAD" ? undefined : a.body)
    return true
}
