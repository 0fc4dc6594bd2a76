// A fake of the ESP32 runtime's socket, reproducing devicescript-esp32 main/sock.c and devicescript
// runtime/devicescript/impl_socket.c, for the socket layer's tests. The test moves the worker task and the
// main loop by hand, so every interleaving the C code allows can be set up:
//   - _socketOpen queues an open for the worker (queue of 50) and returns 0, also when the queue was full
//     (impl_socket.c overwrites the -1 with 0): then the event hook is cleared and no event ever comes;
//   - the worker runs one command at a time: an open first closes the previous socket (on the worker, safe),
//     then DNS + TCP connect (sock_fd set), then the TLS handshake (no timeout), then pushes `open`;
//     a write runs on the worker while the main task goes on reading;
//   - events wait in a queue of 10 and are delivered on a main-loop pass, before that pass's reads; with
//     the hook cleared (after close, a close or an error event) they are dropped;
//   - _socketClose and an `error` event close the socket on the main task: if the worker is inside the
//     handshake or a write, that frees the TLS state under it (recorded as a hazard);
//   - _socketWrite: -100 without a hook, -10 without a socket fd, -1 when the queue is full.
import { SocketRuntime } from "../../src/net/socket"

const CMD_QUEUE = 50
const EVENT_QUEUE = 10
export const READ_CHUNK = 1024

interface Cmd {
    open: boolean
    text: string
}

export class FakeEsp32Socket implements SocketRuntime {
    wifi = true
    /** jd_tcpsock_on_event_override */
    hooked = false
    cmds: Cmd[] = []
    events: string[] = []
    eventArgs: any[] = []
    /** sock_fd; each connection gets a new number */
    fd = 0
    private fds = 0
    connected = false
    /** what the worker does now: "" idle, "connect" (DNS + TCP), "handshake", "write" */
    busy = ""
    private busyText = ""
    /** the handler set as ds._socketOnEvent */
    onEvent: (event: string, arg?: any) => void = null
    /** bytes the server sent on the current connection, not read yet */
    private serverOut = ""
    /** the text being read, and how far */
    private src = ""
    private srcOff = 0
    private serverClosed = false
    /** what the server received, per connection fd */
    received: Record<string, string> = {}
    /** frees of the TLS state while the worker was using it ("close during handshake"/"close during write") */
    hazards: string[] = []
    opens = 0
    closes = 0
    /** the most writes ever queued or running at once */
    maxWrites = 0
    /** main-loop reads that ran while the worker was inside a write on the same connection */
    readsDuringWrite = 0
    /** events dropped because the hook was cleared */
    dropped = 0

    // ---- the hooks (impl_socket.c) ----

    open(host: string, port: number): number {
        if (!this.wifi) throw new RangeError("network not available")
        this.opens++
        this.hooked = true
        if (this.cmds.length >= CMD_QUEUE) {
            this.hooked = false
            return 0
        }
        this.cmds.push({ open: true, text: host })
        return 0
    }

    write(text: string): number {
        if (!this.hooked) return -100
        if (!this.fd) return -10
        if (this.cmds.length >= CMD_QUEUE) return -1
        this.cmds.push({ open: false, text: text })
        this.countWrites()
        return 0
    }

    close(): number {
        if (!this.hooked) return -1
        this.closes++
        this.nativeClose(true)
        this.hooked = false
        return 0
    }

    // ---- the worker task ----

    /** The worker takes its next command. An open closes the previous socket (on the worker) and starts connecting. */
    take() {
        if (this.busy !== "" || !this.cmds.length) throw new Error("worker busy or nothing queued")
        const c = this.cmds.shift()
        if (c.open) {
            this.nativeClose(false)
            this.busy = "connect"
        } else {
            this.busy = "write"
            this.busyText = c.text
        }
    }

    /** DNS and TCP connect done: sock_fd is set, the TLS handshake starts (and blocks, with no timeout). */
    tcpConnected() {
        this.expect("connect")
        this.fd = ++this.fds
        this.received["" + this.fd] = ""
        this.serverOut = ""
        this.serverClosed = false
        this.busy = "handshake"
    }

    /** The handshake finished: the socket is readable by the main loop, `open` is pushed. */
    handshakeDone() {
        this.expect("handshake")
        this.busy = ""
        this.connected = true
        this.push("open", undefined)
    }

    /** DNS or TCP connect failed: only an error is pushed (sock.c push_error). */
    connectFailed(msg: string) {
        this.expect("connect")
        this.busy = ""
        this.push("error", msg)
    }

    /** The handshake failed: raise_error closes the socket and pushes error and close. */
    handshakeFailed(msg: string) {
        this.expect("handshake")
        this.busy = ""
        this.raiseError(msg)
    }

    /** The write in progress ends; the server gets its bytes if the socket is still open. */
    wrote() {
        this.expect("write")
        this.busy = ""
        if (this.fd && this.connected) this.received["" + this.fd] += this.busyText
    }

    /** Runs queued writes to the end (and nothing else). */
    writeAll() {
        while (this.busy === "" && this.cmds.length && !this.cmds[0].open) {
            this.take()
            this.wrote()
        }
    }

    // ---- the main loop (jd_tcpsock_process) ----

    /** One main-loop pass: queued events first, then reads (1 KB at a time) while connected. */
    mainPass() {
        while (this.events.length) this.deliver(this.events.shift(), this.eventArgs.shift())
        this.read()
    }

    /** Only the reads of a pass: on the S3 the main task can read before the worker's `open` is delivered. */
    read() {
        while (this.connected) {
            // a chunk of up to 1 KB written straight into its buffer, as sock.c hands the VM its sockbuf
            let chunk: Buffer = null
            let pos = 0
            while (pos < READ_CHUNK) {
                if (this.srcOff >= this.src.length) {
                    this.src = this.serverOut
                    this.serverOut = ""
                    if (!this.src.length && this.serverSource) {
                        this.src = this.serverSource()
                        if (this.src === undefined) {
                            this.src = ""
                            this.serverSource = null
                        }
                    }
                    this.srcOff = 0
                    if (!this.src.length) break
                }
                if (!chunk) chunk = Buffer.alloc(READ_CHUNK)
                const n = Math.min(READ_CHUNK - pos, this.src.length - this.srcOff)
                chunk.blitAt(pos, this.src, this.srcOff, n)
                pos += n
                this.srcOff += n
            }
            if (this.busy === "write" && (pos || this.serverClosed)) this.readsDuringWrite++
            if (!pos) {
                if (this.serverClosed) this.raiseError(null)
                return
            }
            this.deliver("data", pos < READ_CHUNK ? chunk.slice(0, pos) : chunk)
        }
    }

    // ---- the server ----

    serverSends(text: string) {
        this.serverOut += text
    }

    /**
     * What the server sends next, made line by line while the main loop reads (undefined: done), so a test
     * of the heap holds no more of it than the network stack would (outside the VM heap on a device).
     */
    serverSource: () => string | undefined = null

    serverCloses() {
        this.serverClosed = true
    }

    /** What the server got on the current connection. */
    got(): string {
        return this.received["" + this.fd]
    }

    /** What the server got on the current connection since the last call (and forgets it). */
    takeReceived(): string {
        const t = this.received["" + this.fd]
        this.received["" + this.fd] = ""
        return t
    }

    // ---- internals ----

    private deliver(event: string, arg: any) {
        if (!this.hooked || !this.onEvent) {
            this.dropped++
            return
        }
        // impl_socket.c tcpsock_on_event
        if (event === "close") this.hooked = false
        if (event === "error") {
            this.hooked = false
            this.nativeClose(true)
        }
        this.onEvent(event, arg)
    }

    private push(event: string, arg: any) {
        if (this.events.length >= EVENT_QUEUE) return // xQueueSend with a 20-tick wait: lost when full
        this.events.push(event)
        this.eventArgs.push(arg)
    }

    private raiseError(msg: string) {
        if (!this.fd) return
        this.nativeClose(false)
        if (msg) this.push("error", msg)
        this.push("close", undefined)
    }

    /** jd_tcpsock_close; `onMain`: called on the main task while the worker may be running. */
    private nativeClose(onMain: boolean) {
        if (onMain && this.busy === "handshake") this.hazards.push("close during handshake")
        if (onMain && this.busy === "write") this.hazards.push("close during write")
        this.fd = 0
        this.connected = false
    }

    private countWrites() {
        let n = this.busy === "write" ? 1 : 0
        for (let i = 0; i < this.cmds.length; ++i) if (!this.cmds[i].open) n++
        if (n > this.maxWrites) this.maxWrites = n
    }

    private expect(state: string) {
        if (this.busy !== state) throw new Error("worker is " + this.busy + ", not " + state)
    }
}
