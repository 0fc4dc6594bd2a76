"""A feedline client written from docs/PROTOCOL.md alone, as an outsider would: Python 3 standard library only
(ssl, socket; the WebSocket is RFC 6455 by hand), nothing of the project's code. It runs the checks a client relies
on over the device port (TLS), plain TCP and the WebSocket, prints `ok <check>` or `FAIL <check>: why` for each,
and exits 1 if any failed.

    python3 foreign_client.py '{"host":"127.0.0.1","tls":7443,"tcp":7000,"app":7080,"ca":"ca.pem","key":"<master key>"}'
"""
import base64
import json
import os
import socket
import ssl
import struct
import sys
import time

WAIT_S = 5.0
CFG = json.loads(sys.argv[1])
KEY = CFG["key"]
failures = []


class Closed(Exception):
    pass


class LineDoor:
    """The device port (TLS, or plain TCP): a stream of JSON objects up, one JSON object per line down [P§3]."""

    def __init__(self, tls=True):
        raw = socket.create_connection((CFG["host"], CFG["tls"] if tls else CFG["tcp"]), timeout=WAIT_S)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.create_default_context(cafile=CFG["ca"])
            ctx.check_hostname = False  # the test certificate names localhost, we dial 127.0.0.1
            raw = ctx.wrap_socket(raw, server_hostname="localhost")
        self.sock = raw
        self.buf = b""
        self.closed = False

    def write(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def send(self, request):
        self.write(json.dumps(request) + "\n")

    def message(self, deadline):
        """The next line, b"" for a heartbeat; raises Closed or socket.timeout."""
        while b"\n" not in self.buf:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
                raise Closed(self.buf.decode("ascii", "replace"))
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def close(self):
        self.sock.close()


class WsDoor:
    """The WebSocket /ws on the app port [P§1], plain ws:// on loopback: one envelope per message [P§3]."""

    def __init__(self, pong=True, path="/ws"):
        self.sock = socket.create_connection((CFG["host"], CFG["app"]), timeout=WAIT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {CFG['host']}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise Closed(head.decode())
        self.pong = pong
        self.pings = 0
        self.close_frame = None
        self.closed = False

    def frame(self, opcode, payload, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def write(self, data, binary=False):
        self.frame(2 if binary else 1, data.encode() if isinstance(data, str) else data)

    def send(self, request):
        self.write(json.dumps(request))

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
                raise Closed("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def message(self, deadline):
        """The next data message's payload (b"" for the server's heartbeat); answers pings; raises Closed on a close frame."""
        data = b""
        while True:
            b0, b1 = self.read_exact(2, deadline)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self.read_exact(2, deadline))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.read_exact(8, deadline))[0]
            payload = self.read_exact(n, deadline)
            opcode = b0 & 0x0F
            if opcode == 9:
                self.pings += 1
                if self.pong:
                    self.frame(10, payload)
                continue
            if opcode == 8:
                self.closed = True
                self.close_frame = (struct.unpack(">H", payload[:2])[0], payload[2:].decode()) if len(payload) >= 2 else (1005, "")
                raise Closed(f"close {self.close_frame}")
            data += payload
            if b0 & 0x80:
                return data

    def close(self):
        self.sock.close()


def next_json(door, pred=lambda o: True, wait=WAIT_S):
    """The next JSON object from the server matching pred; heartbeats (blank lines, empty messages) skipped."""
    deadline = time.monotonic() + wait
    while True:
        raw = door.message(deadline)
        if raw.strip() == b"":
            continue
        o = json.loads(raw)
        if pred(o):
            return o


def answer(door, token, wait=WAIT_S):
    return next_json(door, lambda o: o.get("token") == token or o.get("t") == token, wait)


def ask(door, request):
    door.send(request)
    return answer(door, request["token"])


def check(name, fn):
    try:
        fn()
        print(f"ok {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check runs
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def welcomed(door):
    w = next_json(door)
    expect("welcome" in w and isinstance(w.get("time"), int), f"the first line is the welcome: {w}")
    expect(w["heartbeat"] < w["faulty"] < w["timeout"], f"the keep-alive contract holds: {w}")
    door.welcome = w
    return door


def signed_in(door):
    welcomed(door)
    a = ask(door, {"method": "get", "resource": "/session", "headers": {"X-ApiKey": KEY}, "token": "in"})
    expect(a["status"] == 200, f"the key is taken: {a}")
    return door


def new_feed(door, title):
    a = ask(door, {"method": "post", "resource": "/feeds", "body": {"title": title}, "token": "f"})
    expect(a["status"] == 201, f"a feed is made: {a}")
    return a["body"]["id"]


def doors():
    return [("tls", lambda **k: LineDoor(True)), ("tcp", lambda **k: LineDoor(False)), ("ws", lambda **k: WsDoor(**k))]


# --- the life of a client: connect, auth, put, get, subscribe with since, pushes, unsubscribe, reconnect --------
def client_life(open_door):
    def run():
        d = signed_in(open_door())
        feed = new_feed(d, "foreign")
        R = f"/feeds/{feed}/datastreams/temp"
        t0 = 1_763_790_000_000
        w = ask(d, {"method": "put", "resource": f"/feeds/{feed}", "body": {"version": "1.0.0", "datastreams": [{"id": "temp", "datapoints": [{"at": str(t0), "value": "20.5"}, {"at": t0 + 1000, "value": 21.50}]}]}, "token": "w1"})
        expect(w == {"token": "w1", "status": 200, "resource": f"/feeds/{feed}"}, f"the write's answer: {w}")
        g = ask(d, {"method": "GET", "resource": R + ".json", "token": "g1"})
        expect(g["body"]["current_value"] == "21.5" and g["body"]["at"] == "2025-11-22T05:40:01.000Z", f"a number is stored as read, printed again; at as ISO: {g}")
        h = ask(d, {"method": "get", "resource": R, "params": {"start": str(t0), "interval": "1"}, "token": "h1"})
        expect([p["value"] for p in h["body"]["datapoints"]] == ["20.5", "21.5"], f"history params on a datastream, numbers as strings: {h}")
        s = ask(d, {"method": "subscribe", "resource": R, "params": {"since": t0 - 1}, "token": "s1"})
        expect(s["status"] == 200, f"subscribed: {s}")
        replay = [answer(d, "s1")["body"]["current_value"] for _ in range(2)]
        expect(replay == ["20.5", "21.5"], f"the replay since, in order: {replay}")
        for token, resource in (("sf", f"/feeds/{feed}"), ("sd", R + "/datapoints")):
            expect(ask(d, {"method": "subscribe", "resource": resource, "token": token})["resource"] == resource, "subscribed")
        other = signed_in(open_door())
        ask(other, {"method": "put", "resource": R, "body": {"current_value": "22"}, "token": "w2"})
        live = answer(d, "s1")
        expect(live["resource"] == R and live["body"]["current_value"] == "22", f"a push from another connection's write: {live}")
        for token in ("sf", "sd"):
            p = answer(d, token)
            expect(p["resource"] == R and p["body"]["current_value"] == "22", f"a push names the datastream, whatever the subscription names: {p}")
        last_at = live["body"]["at"]
        d.close()
        # written while this client is away; it reconnects and subscribes since the last at it handled
        ask(other, {"method": "put", "resource": R, "body": {"current_value": "23"}, "token": "w3"})
        d = signed_in(open_door())
        ask(d, {"method": "subscribe", "resource": R, "params": {"since": last_at}, "token": "s1"})
        missed = answer(d, "s1")
        expect(missed["body"]["current_value"] == "23", f"after a reconnect, the point written meanwhile: {missed}")
        u = ask(d, {"method": "unsubscribe", "resource": R, "params": {"token": "s1"}, "token": "u1"})
        expect(u["body"] == {"removed": 1}, f"unsubscribed: {u}")
        ask(other, {"method": "put", "resource": R, "body": {"current_value": "24"}, "token": "w4"})
        g = ask(d, {"method": "get", "resource": R, "token": "g2"})
        expect(g["body"]["current_value"] == "24", f"{g}")
        try:
            stray = next_json(d, lambda o: o.get("token") == "s1", 0.3)
            raise AssertionError(f"a push after unsubscribe: {stray}")
        except socket.timeout:
            pass
        d.close()
        other.close()

    return run


# --- keep-alive [P§4] --------------------------------------------------------------------------------------
def ws_keepalive():
    d = WsDoor(pong=False)
    timeout_s = welcomed(d).welcome["timeout"] / 1000
    d.send({"method": "get", "resource": "/session", "headers": {"X-ApiKey": KEY}, "token": "in"})
    # the server's heartbeat on the WebSocket: an empty message (and a ping), every `heartbeat` ms
    expect(answer(d, "in")["status"] == 200, "signed in")
    deadline = time.monotonic() + WAIT_S
    while d.message(deadline) != b"":
        pass  # a socket.timeout here: no empty message came
    # our heartbeats (a backtick, as Good Uncle's clients send) keep a connection that answers no ping open past the timeout ...
    end = time.monotonic() + timeout_s + 1
    while time.monotonic() < end:
        d.write("`")
        time.sleep(0.2)
    expect(ask(d, {"method": "get", "resource": "/session", "token": "alive"})["status"] == 200, "still open")
    expect(d.pings > 0, "the server pings")
    # ... and silence closes it: the notice 408 E_IDLE_TIMEOUT, then close 1008 with the code as its reason
    notice = next_json(d, lambda o: o.get("notice") is True, 10)
    expect(notice["status"] == 408 and notice["body"]["code"] == "E_IDLE_TIMEOUT", f"{notice}")
    try:
        while True:
            d.message(time.monotonic() + WAIT_S)
    except Closed:
        pass
    expect(d.close_frame == (1008, "E_IDLE_TIMEOUT"), f"the close frame: {d.close_frame}")
    d.close()


# --- what an outsider's client does that ours does not ------------------------------------------------------
def stream_edges(tls):
    def run():
        # requests before the welcome, CRLF endings, one split over three segments, two on one line, pretty-printed
        d = LineDoor(tls)
        auth = json.dumps({"method": "get", "resource": "/session", "headers": {"X-ApiKey": KEY}, "token": "in"})
        d.write(auth + "\r\n")
        welcomed(d)
        expect(answer(d, "in")["status"] == 200, "a request sent before the welcome is answered after it")
        req = json.dumps({"method": "get", "resource": "/feeds/1", "token": "split"}) + "\r\n"
        for part in (req[:7], req[7:30], req[30:]):
            d.write(part)
            time.sleep(0.05)
        expect(answer(d, "split")["status"] == 200, "a request split over segments")
        d.write('{"method":"get","resource":"/feeds/1","token":"a"} {"method":"get","resource":"/feeds/1","token":"b"}\n')
        expect(answer(d, "a")["status"] == 200 and answer(d, "b")["status"] == 200, "two requests on one line")
        d.write('{\r\n  "method" : "Get",\r\n  "resource" : "/feeds/1/",\r\n  "headers" : {"X-APIKEY" : "%s"},\r\n  "token" : 7\r\n}\r\n' % KEY)
        expect(answer(d, "7")["status"] == 200, "pretty-printed with CRLF, a method in any case, X-APIKEY, a numeric token echoed as a string")
        a = ask(d, {"method": "get", "resource": "feeds/1", "token": "noslash"})
        expect((a["status"], a["body"]["code"]) == (400, "E_BAD_RESOURCE"), f"a resource without its leading slash: {a}")
        a = ask(d, {"method": "get", "resource": "/feeds/1?limit=5", "token": "query"})
        expect((a["status"], a["body"]["code"]) == (400, "E_BAD_RESOURCE"), f"a query in the resource: {a}")
        a = ask(d, {"method": "get", "resource": "/v2/feeds/1", "token": "v2"})
        expect(a["status"] == 404 and '"/feeds/1"' in a["body"]["errors"], f"a REST path's /v2 is named with the resource to send: {a}")
        d.write("hello\n")
        bad = next_json(d, lambda o: o.get("status") == 400)
        expect(bad["token"] == "" and bad["body"]["code"] == "E_BAD_JSON", f"a bad line: {bad}")
        if not tls:  # ssl's unwrap() waits for the server's close_notify: a TLS half-close is not to be had from it
            # half-close once the requests are sent: they are answered, then the server closes
            d.send({"method": "get", "resource": "/feeds/1", "token": "last"})
            d.sock.shutdown(socket.SHUT_WR)
            expect(answer(d, "last")["status"] == 200, "answered after our half-close")
            try:
                while True:
                    d.message(time.monotonic() + WAIT_S)
            except Closed:
                pass
        d.close()

    return run


def ws_edges():
    d = signed_in(WsDoor())
    d.write(json.dumps({"method": "get", "resource": "/feeds/1", "token": "bin"}), binary=True)
    expect(answer(d, "bin")["status"] == 200, "a request in a binary message")
    text = json.dumps({"method": "get", "resource": "/feeds/1", "token": "frag"}).encode()
    d.frame(1, text[:10], fin=False)
    d.frame(0, text[10:], fin=True)
    expect(answer(d, "frag")["status"] == 200, "a request in a fragmented message")
    d.write('{"method":"get","resource":"/feeds/1","token":"x1"}\n{"method":"get","resource":"/feeds/1","token":"x2"}\n')
    two = next_json(d, lambda o: o.get("status") == 400)
    expect(two["body"]["code"] == "E_BAD_JSON" and "one request" in two["body"]["errors"], f"two requests in one message are refused as such: {two}")
    d.close()
    # a socket.io client's habit: the credential on the URL, which is not read
    d = welcomed(WsDoor(path=f"/ws?key={KEY}&token={KEY}"))
    a = ask(d, {"method": "get", "resource": "/feeds/1", "token": "url"})
    expect(a["status"] == 401 and "X-ApiKey" in a["body"]["errors"], f"a key on the URL is not read, and the 401 says where it goes: {a}")
    d.close()


def clear_to_tls():
    # the Xively seed's TCP socket was plain: the same request in clear to the TLS port is told to use TLS
    s = socket.create_connection((CFG["host"], CFG["tls"]), timeout=WAIT_S)
    s.sendall(b'{"method":"get","resource":"/feeds/1","headers":{"X-ApiKey":"abcdef123456"},"token":"0x12345"}\n')
    out = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        out += chunk
    s.close()
    notice = json.loads(out.split(b"\n")[0])
    expect(notice.get("notice") is True and notice["body"]["code"] == "E_USE_TLS", f"told to use TLS, in clear: {out!r}")


for name, open_door in doors():
    check(f"{name}: connect, auth, put, get, subscribe since, pushes, reconnect, unsubscribe", client_life(open_door))
check("tls: before the welcome, CRLF, split, two a line, pretty-printed, case, leading slash, /v2, a bad line", stream_edges(True))
check("tcp: the same over plain TCP, and a half-close", stream_edges(False))
check("tls: the protocol in clear to the TLS port", clear_to_tls)
check("ws: binary, fragmented, two requests in one message, a key on the URL", ws_edges)
check("ws: the server's heartbeat, ours, the idle timeout's notice and close", ws_keepalive)
sys.exit(1 if failures else 0)
