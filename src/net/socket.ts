// The device's one socket, written over the runtime hooks (_socketOpen/_socketWrite/_socketClose/
// _socketOnEvent) instead of @devicescript/net's connect(), whose bugs bite a server that speaks first
// (platform notes §0.0, §2):
//   - data arriving before `open` was consumed made connect() assert: here every event only updates
//     state flags and queues data, and waiters re-check the flags, so no event can be "lost";
//   - close() never woke a blocked reader (it leaked until out of memory): here close() wakes it;
//   - a full native send queue (-1) threw: here sends are queued and retried.
// The runtime has one native socket per device: opening a new one terminates the previous one.
import * as ds from "@devicescript/core"

type SocketEvent = "open" | "close" | "data" | "error"
type DsSockets = typeof ds & {
    _socketOpen(host: string, port: number): number
    _socketClose(): number
    _socketWrite(buf: Buffer | string): number
    _socketOnEvent: (event: SocketEvent, arg?: Buffer | string) => void
}
const rt = ds as DsSockets

/** The native send queue holds 50 entries (ESP32 sock.c); when full, retry every 10 ms for up to this long. */
const SEND_STALL_MAX_MS = 2000
/** Readers re-check their socket this often even without an event (belt and braces against a missed wake). */
const RECV_RECHECK_MS = 1000

let current: LinkSocket = null

function onEvent(event: SocketEvent, arg?: Buffer | string) {
    const s = current
    if (!s) return
    if (event === "data") s._data(arg as Buffer)
    else if (event === "open") s._open()
    else if (event === "close") s._finish("E_CLOSED_BY_SERVER")
    else if (event === "error") s._finish("E_SOCKET " + errorText("" + arg))
}

/** The runtime's error text without its "tls://host:port: " prefix, so the reason fits a 32-character value. */
function errorText(msg: string): string {
    if (!msg.startsWith("tls://") && !msg.startsWith("tcp://")) return msg
    const i = msg.indexOf(": ")
    return i < 0 ? msg : msg.slice(i + 2)
}

/** The writer fiber: sends queued text in order, waiting out a full native queue. */
async function drain(s: LinkSocket) {
    s._writing(true)
    const q = s._outq()
    let stalledMs = 0
    while (q.length && !s.closed) {
        if (current !== s) {
            s._finish("E_REPLACED")
            break
        }
        const r = rt._socketWrite(q[0])
        if (r === 0) {
            q.shift()
            stalledMs = 0
        } else if (r === -1 && stalledMs < SEND_STALL_MAX_MS) {
            await ds.sleep(10)
            stalledMs += 10
        } else s.close("E_SEND " + r)
    }
    s._writing(false)
}

export class LinkSocket {
    private chunks: Buffer[] = []
    private outq: string[] = []
    private writing = false
    private wake = ds.emitter<number>()
    opened = false
    closed = false
    /** why it closed (a stable code, with the runtime's text for socket errors) */
    reason: string = undefined

    private constructor() {}

    /**
     * Opens the device's socket (terminating any previous one). Port is the server's TCP port; TLS
     * is selected by a negative port in the runtime. Throws RangeError "network not available" when
     * Wi-Fi has no IP, Error when the runtime refuses.
     */
    static open(host: string, port: number, tls: boolean): LinkSocket {
        if (current) current._finish("E_REPLACED")
        rt._socketOnEvent = onEvent
        const s = new LinkSocket()
        current = s
        const r = rt._socketOpen(host, tls ? -port : port)
        if (r !== 0) {
            current = null
            throw new Error("E_OPEN " + r)
        }
        return s
    }

    /** Waits until open or closed; true when open. Data that came before `open` stays queued. */
    async waitOpen(timeoutMs: number): Promise<boolean> {
        const deadline = ds.millis() + timeoutMs
        for (;;) {
            if (this.closed) return false
            if (this.opened || this.chunks.length) return true
            const left = deadline - ds.millis()
            if (left <= 0) return false
            await ds.wait(this.wake, left)
        }
    }

    /** The next chunk of bytes; null once closed (after the queued data has been read). */
    async recv(): Promise<Buffer> {
        for (;;) {
            if (this.chunks.length) return this.chunks.shift()
            if (this.closed) return null
            await ds.wait(this.wake, RECV_RECHECK_MS)
        }
    }

    /** Queues text for sending, in order; a failure closes the socket (readers see null). */
    send(text: string) {
        if (this.closed) return
        this.outq.push(text)
        if (!this.writing) drain.start(this)
    }

    /** Closes the socket and wakes its reader, who sees null and `reason`. */
    close(reason: string) {
        if (current === this) {
            current = null
            rt._socketClose()
        }
        this._finish(reason)
    }

    /** @internal the writer fiber's queue */
    _outq(): string[] {
        return this.outq
    }

    /** @internal */
    _writing(on: boolean) {
        this.writing = on
    }

    _open() {
        this.opened = true
        this.wake.emit(0)
    }

    _data(b: Buffer) {
        if (this.closed || !b) return
        this.chunks.push(b)
        this.wake.emit(0)
    }

    _finish(reason: string) {
        if (this.closed) return
        this.closed = true
        this.reason = reason
        this.outq.insert(0, -this.outq.length)
        if (current === this) current = null
        this.wake.emit(0)
    }
}
