// The examples of docs/PROTOCOL.md read as patterns, so a test can hold the server to them as written: JSON where
// the doc writes JSON, and its placeholders where it does not. A string of "…" (or "...") or holding "…" is any
// string / any text in its place; `{…}` any object; `[…]` and `[feed…]` any array; a member `…` leaves the object
// open to more members; a member named without a value (`{"id","since"}`) is present with any value, `"key"?:…`
// may be absent; a bare name (N, n, R, F, AT, SEQ) is any value; an array of one object (`[{"id","since"}]`) holds
// any number of such objects. Any other object is closed: the answer has exactly its members.

export type Pattern =
    | { kind: "any" }
    | { kind: "text"; glob: string[] } // the literal parts around each "…"
    | { kind: "value"; value: unknown }
    | { kind: "object"; members: Map<string, { pattern: Pattern; optional: boolean }>; open: boolean }
    | { kind: "array"; items: Pattern[] | undefined } // undefined: any items

const ELLIPSIS = /^(…|\.\.\.)/

/** Parses one example; throws with the place it could not read. */
export function parsePattern(text: string): Pattern {
    let at = 0
    const fail = (what: string): never => {
        throw new Error(`doc example: ${what} at character ${at} of ${text}`)
    }
    const space = () => {
        while (at < text.length && /\s/.test(text[at])) at++
    }
    const ellipsis = (): boolean => {
        const m = ELLIPSIS.exec(text.slice(at))
        if (m) at += m[0].length
        return m !== null
    }
    const string = (): string => {
        const m = /^"(?:[^"\\]|\\.)*"/.exec(text.slice(at))
        if (!m) fail("expected a string")
        at += m![0].length
        return JSON.parse(m![0]) as string
    }
    const value = (): Pattern => {
        space()
        const c = text[at]
        if (c === "{") return object()
        if (c === "[") return array()
        if (c === '"') {
            const s = string()
            const parts = s.split(/…|\.\.\./)
            return parts.length > 1 ? { kind: "text", glob: parts } : { kind: "value", value: s }
        }
        if (ellipsis()) return { kind: "any" }
        const literal = /^(-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null)/.exec(text.slice(at))
        if (literal) {
            at += literal[0].length
            return { kind: "value", value: JSON.parse(literal[0]) }
        }
        const name = /^[A-Za-z_]\w*/.exec(text.slice(at))
        if (!name) return fail("expected a value")
        at += name![0].length
        ellipsis() // `feed…`: any number of feeds, as any
        return { kind: "any" }
    }
    const object = (): Pattern => {
        at++ // {
        const members = new Map<string, { pattern: Pattern; optional: boolean }>()
        let open = false
        space()
        if (text[at] === "}") return at++, { kind: "object", members, open }
        for (;;) {
            space()
            if (ellipsis()) open = true
            else {
                const name = string()
                const optional = text[at] === "?"
                if (optional) at++
                space()
                let pattern: Pattern = { kind: "any" }
                if (text[at] === ":") {
                    at++
                    pattern = value()
                }
                members.set(name, { pattern, optional })
            }
            space()
            if (text[at] === ",") at++
            else if (text[at] === "}") return at++, { kind: "object", members, open }
            else fail("expected , or }")
        }
    }
    const array = (): Pattern => {
        at++ // [
        const items: Pattern[] = []
        space()
        if (text[at] === "]") return at++, { kind: "array", items }
        for (;;) {
            const item = value()
            space()
            // `[…]`, `[feed…]`: any items
            if (item.kind === "any") {
                if (text[at] !== "]") fail("a placeholder array holds nothing else")
                at++
                return { kind: "array", items: undefined }
            }
            items.push(item)
            if (text[at] === ",") at++
            else if (text[at] === "]") return at++, { kind: "array", items }
            else fail("expected , or ]")
        }
    }
    const p = value()
    space()
    if (at !== text.length) fail("expected the end")
    // `{...}` / `{…}`: any object
    return p
}

/** `{…}` written as an object holding only the open mark: any object. */
function anyObject(p: Pattern): boolean {
    return p.kind === "object" && p.open && p.members.size === 0
}

/**
 * Where `actual` differs from `pattern` (empty: it matches). `loose`: member names whose value is the server's
 * own (a session id, a clock reading): only its JSON type is held to the example's.
 */
export function mismatches(pattern: Pattern, actual: unknown, loose: ReadonlySet<string> = new Set(), path = "$"): string[] {
    const typeOf = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v)
    switch (pattern.kind) {
        case "any":
            return []
        case "text": {
            if (typeof actual !== "string") return [`${path}: a string, not ${JSON.stringify(actual)}`]
            const [first, ...rest] = pattern.glob
            let at = first.length
            let ok = actual.startsWith(first)
            for (const part of rest) {
                const i = part === "" ? actual.length : actual.indexOf(part, at)
                if (i < 0) ok = false
                at = i + part.length
            }
            if (rest.at(-1) !== "" && !actual.endsWith(rest.at(-1)!)) ok = false
            return ok ? [] : [`${path}: ${JSON.stringify(actual)} is not ${JSON.stringify(pattern.glob.join("…"))}`]
        }
        case "value": {
            const key = path.slice(path.lastIndexOf(".") + 1)
            if (loose.has(key)) return typeOf(actual) === typeOf(pattern.value) ? [] : [`${path}: a ${typeOf(pattern.value)}, not ${JSON.stringify(actual)}`]
            return JSON.stringify(actual) === JSON.stringify(pattern.value) ? [] : [`${path}: ${JSON.stringify(actual)}, the doc says ${JSON.stringify(pattern.value)}`]
        }
        case "array": {
            if (!Array.isArray(actual)) return [`${path}: an array, not ${JSON.stringify(actual)}`]
            if (pattern.items === undefined) return []
            // `[{"id","since"}]`: each item is such an object, however many there are
            const [only] = pattern.items
            if (pattern.items.length === 1 && only.kind === "object") return actual.flatMap((v, i) => mismatches(only, v, loose, `${path}[${i}]`))
            if (actual.length !== pattern.items.length) return [`${path}: ${actual.length} items, the doc shows ${pattern.items.length}`]
            return pattern.items.flatMap((p, i) => mismatches(p, actual[i], loose, `${path}[${i}]`))
        }
        case "object": {
            if (typeOf(actual) !== "object") return [`${path}: an object, not ${JSON.stringify(actual)}`]
            if (anyObject(pattern)) return []
            const o = actual as Record<string, unknown>
            const out: string[] = []
            for (const [name, m] of pattern.members) {
                if (!(name in o)) {
                    if (!m.optional) out.push(`${path}.${name}: missing`)
                } else out.push(...mismatches(m.pattern, o[name], loose, `${path}.${name}`))
            }
            if (!pattern.open) for (const name of Object.keys(o)) if (!pattern.members.has(name)) out.push(`${path}.${name}: not in the doc's example`)
            return out
        }
    }
}

/**
 * A request example made sendable: literal parts as written, `"..."` and `{…}` from `fills` by member name
 * (`X-ApiKey` → the key, `body` → a body); throws when a placeholder has no fill.
 */
export function filled(pattern: Pattern, fills: Record<string, unknown>, name = ""): unknown {
    const missing = (): never => {
        throw new Error(`the example's placeholder for "${name}" has no fill`)
    }
    switch (pattern.kind) {
        case "value":
            return pattern.value
        case "object":
            if (anyObject(pattern)) return name in fills ? fills[name] : missing()
            return Object.fromEntries([...pattern.members].map(([k, m]) => [k, filled(m.pattern, fills, k)]))
        case "array":
            return pattern.items === undefined ? (name in fills ? fills[name] : missing()) : pattern.items.map((p) => filled(p, fills, name))
        default:
            return name in fills ? fills[name] : missing()
    }
}

/** The examples of a Markdown document: each line of its ```json blocks, and each inline code span that is an object. */
export function examplesOf(markdown: string): string[] {
    const out: string[] = []
    for (const block of markdown.matchAll(/^```json\n([\s\S]*?)^```/gm)) out.push(...block[1].split("\n").filter((l) => l.trim() !== ""))
    for (const span of markdown.matchAll(/`(\{"[^`]*)`/g)) out.push(span[1])
    return out
}
