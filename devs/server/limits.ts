// Every limit the server enforces, each next to its reason. docs/OPERATIONS.md lists them.
import { MAX_OBJECT_BYTES } from "../../src/protocol.ts"

/** [P§3] one request object; over it: notice 413 and close (the stream position is lost). */
export { MAX_OBJECT_BYTES }

/**
 * Bytes waiting to go out on one connection (transport buffer included). A connection over it when more
 * output comes is a subscriber that cannot keep up: it is closed with a 503 E_SLOW_CONSUMER notice, so
 * memory per connection stays bounded (by this plus one output: one answer, or the pushes of one write).
 * Checked before that output, so one answer larger than this (a full replay of MAX_REPLAY_POINTS pushes
 * with 64-character ids and token is ~330 KB) still goes out; reads wait for the queue to fall under
 * CONGESTED_QUEUE_BYTES (session.ts takeWaiting), so pipelined answers do not pile up here.
 */
export const MAX_QUEUE_BYTES = 256 * 1024
/**
 * Reads pipelined on one connection are taken one at a time, and not while its queue is congested; what was
 * sent after them waits too (session.ts takeWaiting). While the requests waiting hold more than this many
 * characters, the connection is not read from (TCP back-pressure: the client's sends block), so a client
 * that sends reads and never reads their answers holds at most this plus one socket read of requests, not
 * as many as the rate limits let through.
 */
export const MAX_WAITING_REQUEST_CHARS = 64 * 1024
/** Above this many queued bytes a connection counts as congested ... */
export const CONGESTED_QUEUE_BYTES = 64 * 1024
/** ... and a connection congested for this long is closed too, even if under MAX_QUEUE_BYTES. */
export const SLOW_CONSUMER_MS = 10_000

/** [P§8] subscriptions one connection may hold; each costs an index entry and fan-out work. */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 64
/**
 * [P§8] subscriptions one connection may hold to the same resource (each under its own token): enough for
 * several views of one feed multiplexed on one connection, while each copy pushes every change again.
 */
export const MAX_SUBSCRIPTIONS_PER_RESOURCE = 8

/**
 * [P§8] Fan-out. A feed may owe at most this many pushes (one change to one subscription) queued for its
 * subscribers; while it owes more, writes to it are refused 429 E_FANOUT_BUSY with retry_after_ms, and
 * nothing of them is stored. So a write that is acknowledged is pushed to every live subscriber, and one
 * feed's backlog (and the memory and CPU it costs) stays bounded: at the ~100-200 k pushes/s this 2-core
 * machine delivers, 50 000 is a quarter to half a second of the feed's own backlog. One write's fan-out
 * above the bound still goes through when the feed owes less than the bound, alone.
 */
export const MAX_OWED_PUSHES_PER_FEED = 50_000
/**
 * Feeds with pushes owed are served round robin, this many pushes per feed per visit: another feed's push
 * waits at most one quantum per busy feed (~2-5 ms each here), not for the busy feed's backlog.
 */
export const FANOUT_QUANTUM_PUSHES = 1000
/**
 * One fan-out turn (rendering its pushes and the connections writing them out: encryption, syscalls) takes
 * about this long, then sockets are read and writes committed again: the event loop's lag from fan-out.
 */
export const FANOUT_TURN_BUDGET_MS = 5
/** retry_after_ms of a 429 E_FANOUT_BUSY: the time to deliver half the feed's bound at its share, within these. */
export const FANOUT_RETRY_MIN_MS = 100
export const FANOUT_RETRY_MAX_MS = 5000
/**
 * [P§9] A server stamp leading the clock by more than this is counted (feedline_stamps_ahead_total) and
 * logged, at most once per STAMP_LEAD_LOG_EVERY_MS: a feed taking more than one stamped write a millisecond
 * for a second or more, or another process's clock that far ahead. A burst of a few hundred writes in one
 * millisecond stays under it.
 */
export const STAMP_LEAD_WARN_MS = 1000
export const STAMP_LEAD_LOG_EVERY_MS = 60_000
/**
 * [P§8] Several processes: a feed's change heard before the one committed just before it (another
 * process's, its publish later) waits for it this long (hub/commit-order.ts), far above the milliseconds a
 * publish takes, so a busy publisher is not taken for a lost one (as UNHEARD_LAPSE_MS in bus/redis.ts);
 * then the feed is caught up from the store (CATCH_UP_MAX_POINTS), or its subscribers here are told to
 * resubscribe with `after` (503 E_PUSHES_INTERRUPTED) where it cannot be.
 */
export const STAMP_ORDER_HOLD_MS = 5000
/** ... and at most this many of a feed's changes wait (the fan-out's bound on what a feed may owe): more, and at once. */
export const STAMP_ORDER_MAX_HELD = MAX_OWED_PUSHES_PER_FEED
/**
 * Feeds whose last seq a process remembers (~50 B each), read from the store at start (the newest) and
 * kept as they are heard; past it, the quarter with the oldest seqs is forgotten (commit-order.ts).
 */
export const STAMP_ORDER_MAX_FEEDS = 100_000
/** [P§8] a `since` (or `after`) replay sends at most this many datapoints (and `limit` may ask for fewer); more: the ack says truncated + next_since (next_after). */
export const MAX_REPLAY_POINTS = 1000
/**
 * [P§8] Several processes: a feed whose changes a process may have missed is caught up from the store
 * (hub/catch-up.ts) when at most this many datapoints came after the last it pushed (a replay's page: one
 * read, bounded pushes per subscriber); more, and its subscribers there are told to resubscribe with `after`.
 */
export const CATCH_UP_MAX_POINTS = MAX_REPLAY_POINTS
/** ... and the feeds to check are read this many at a time (one query each: ids and their last seqs in the statement's arrays, a few hundred KB). */
export const CATCH_UP_PAGE_FEEDS = 5000

/**
 * [P§5] one page of GET /sessions holds whole entries up to this much JSON (a connection with 64
 * subscriptions is about 24 KB), far under MAX_QUEUE_BYTES, so listing a big fleet never makes the
 * asker a slow consumer. Further pages with `page`.
 */
export const SESSIONS_PAGE_BYTES = 64 * 1024

/** [P§5] one history request returns at most this many points (Xively's cap); `limit` above: 422. */
export const MAX_HISTORY_POINTS = 1000
export const DEFAULT_HISTORY_POINTS = 100

/**
 * [P§6] A token bucket's refusal (every 429 *_RATE_LIMITED) is told its turn: the time until the bucket can
 * serve it after the requests refused before it in the same shortage, at most the time the bucket takes to
 * fill (ratelimit.ts retryTurnMs), plus up to this share of that wait drawn at random, so retry_after_ms is
 * at most 1.2 x burst / rate (2.4 s for a key's budget and a connection's, 12 s for structure changes).
 * Told the time of one token instead (~5 ms on a key), a crowd refused at once came back at once and was
 * mostly refused again (a refused write about twice more in the fleet soak).
 */
export const RETRY_JITTER_SHARE = 0.2

/**
 * Requests per connection (token bucket): a device reporting every second uses 1/s; 50/s sustained with
 * bursts of 100 leaves room for a backlog flush after a reconnect while one misbehaving client cannot
 * monopolise the store. Over it: 429 E_RATE_LIMITED with retry_after_ms. HTTP buckets are per address.
 */
export const RATE_PER_SECOND = 50
export const RATE_BURST = 100

/**
 * [P§6] Refusals a device or WebSocket connection's session answers by itself (a request over the connection's rate,
 * a bad line, an object that is no request) are not routed, so no rate spends anything on them: a client that went
 * on sending once refused had each answered at line rate, some 70,000 a second on one connection of 2-byte lines
 * (`x\n`, `{}\n`, a 150-byte answer each), a core of the server for one client's bandwidth. They spend a budget of
 * their own: the connection's request rate, with bursts of this many request bursts (400 by default), so a client
 * that pipelines five bursts' worth at once still has every one answered, and one that heeds its 429s never meets
 * it. Over it: notice 429 E_TOO_MANY_REFUSALS, then close (a reconnect costs a TLS handshake, a burst of refusals).
 */
export const REFUSAL_BURSTS = 4

/**
 * Requests per key (token bucket), over all its connections and doors: 20 connections with one key must not
 * get 20 times one connection's budget. A key may be shared by a fleet (the device key of `npm start` is),
 * so it holds 200/s with bursts of 400: 200 devices writing every second, or 1000 every five, and the
 * backlog flushes of a fleet reconnecting after a restart. A larger fleet gets a key per device or group
 * (`feedline keys create`) or `--key-rate`. Tokens count against the key that minted them. Over it:
 * 429 E_KEY_RATE_LIMITED with retry_after_ms.
 */
export const KEY_RATE_PER_SECOND = 200
export const KEY_RATE_BURST = 400
/**
 * [P§7] Browser tokens per key (POST /jwt: sign-ins with the key and renewals of its tokens), over every
 * address and process. The per-address request rate bounds one address, not a leaked key used from many;
 * each token is a signature, and each sign-in a family whose sign-out is kept (a stored row and an entry in
 * memory) until the family's end, 24 h. People sign in a few times a day and each open page renews once
 * in its token's life (5 h), so 1 a second is far more than any team's dashboards spend, with bursts of 120
 * for a wall of dashboards on one key reloading at once; it holds a leaked key to 86,400 sign-ins a day.
 * Over it: 429 E_TOKEN_RATE_LIMITED with retry_after_ms and Retry-After.
 */
export const TOKEN_MINT_RATE_PER_SECOND = 1
export const TOKEN_MINT_BURST = 120
/**
 * Changes to a feed's structure per key (token bucket), over all its connections, doors and processes:
 * making or deleting feeds and datastreams, renaming a feed, deleting a range of points. Each is a write
 * outside the group commit of points (the SQLite store first moves its journal into the tables, then takes
 * its write lock), so one key making and deleting empty datastreams at its request rate (200/s) raised
 * another tenant's write p99 from ~45 ms to 140-410 ms (max 0.8 s); at 16 changes/s nothing showed. A
 * device writes points (a datastream written with a value is made by the points write and spends nothing);
 * people and provisioning scripts change structure now and then: 10/s with bursts of 100 (a new feed's
 * datastreams are one change). A master key is not held to it (the operator's own scripts). Over it:
 * 429 E_STRUCTURE_RATE_LIMITED with retry_after_ms (and Retry-After), nothing of the request done.
 */
export const STRUCTURE_RATE_PER_SECOND = 10
export const STRUCTURE_RATE_BURST = 100
/** Keys remembered by the per-key limiter; the least recently used are forgotten first (a forgotten key starts full). */
export const MAX_TRACKED_KEYS = 10_000

/** Failed authentications per remote address: 10 per minute, then 429 E_AUTH_RATE_LIMITED (key guessing). */
export const AUTH_FAILURES_BURST = 10
export const AUTH_FAILURES_PER_MINUTE = 10
/** Addresses remembered by the per-address limiters; the oldest are forgotten first. (Every per-address limit keys on limitKeyOf(address), limit-key.ts: an IPv6 /64 is one address.) */
export const MAX_TRACKED_ADDRESSES = 10_000
/**
 * While an address is over its failed keys, a key that authenticated from it within the last
 * PROVEN_KEY_TTL_MS is still looked up (auth/proven-keys.ts): one misconfigured board behind a NAT or a
 * carrier's CGNAT must not lock out its whole fleet's reconnects, and a guesser learns nothing, since only
 * keys already proven from that address pass. A proof is renewed by each new connection's lookup and
 * when a connection that proved its key closes, so a device connected for weeks keeps its pass for a day
 * after it drops. (address, key) pairs remembered: 50,000 (a large fleet behind a few NATs, or that many
 * single devices), ~150 bytes each, ~8 MB at most; the least recently proven are forgotten first.
 */
export const PROVEN_KEY_TTL_MS = 24 * 60 * 60_000
export const MAX_PROVEN_KEYS = 50_000
/** Resources whose route the router remembers (devices name the same few in every request); a few hundred KB at most. */
export const MAX_MATCHED_RESOURCES = 4096

/**
 * A TLS handshake (device port, HTTPS app port) must finish in this time, counted from the TCP accept, so a
 * silent socket holds nothing longer. ESP32 RSA handshakes take seconds, not tens of seconds.
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000
/**
 * Sockets accepted whose TLS handshake has not finished, per remote address. A fleet behind one NAT
 * reconnecting after a restart (2-4 s of jitter, 1-2 s per ESP32 handshake) keeps about half its size in
 * handshakes at once, so 128 fits some 250 devices at that instant; more of them simply retry. Over it
 * the address's oldest pending handshake is dropped: a flood of silent sockets from one address churns
 * only its own sockets, and never fills the listener so that others get a reset.
 */
export const MAX_HANDSHAKES_PER_ADDRESS = 128
/**
 * Pending handshakes over all addresses. Over it the oldest one is dropped, so a flood from many addresses
 * cannot lock devices out either: a device's handshake is the newest and finishes long before 1024 newer
 * sockets pass it, unless the flood opens hundreds per second.
 */
export const MAX_PENDING_HANDSHAKES = 1024

/**
 * Open device and WebSocket connections per process. Each may hold MAX_QUEUE_BYTES, so this bounds
 * worst-case queue memory at 1 GiB. Over it: notice 429 E_TOO_MANY_CONNECTIONS, then close.
 */
export const MAX_CONNECTIONS = 4096
/**
 * [P§7] A connection must make an authenticated request (one whose key or token is accepted) within this
 * long of its welcome, else notice 408 E_AUTH_TIMEOUT and close: heartbeats alone hold no slot. Devices
 * send their key with the first request, right after the welcome; 5 s leaves room for a slow link.
 */
export const AUTH_DEADLINE_MS = 5000
/**
 * Connections from one remote address that have not authenticated yet. A device authenticates within a
 * round trip of its welcome, so even a NATed fleet reconnecting at once has a handful in that state; 64
 * leaves room for hundreds of devices behind one address, and one address holds at most 64 slots without
 * a key (each for at most AUTH_DEADLINE_MS). Over it the address's oldest unauthenticated connection gets
 * notice 429 E_TOO_MANY_UNAUTHENTICATED and is closed to make room for the new one, so a device behind the
 * same address as a client that never sends a key still gets in.
 */
export const MAX_UNAUTHENTICATED_PER_ADDRESS = 64
/**
 * Connections from one remote address, authenticated or not: a quarter of MAX_CONNECTIONS, so a NATed
 * fleet of a thousand devices fits behind one address and no single address can take the whole server.
 * Over it: notice 429 E_TOO_MANY_CONNECTIONS, then close.
 */
export const MAX_CONNECTIONS_PER_ADDRESS = 1024
/**
 * Connections one key may hold open (device port and WebSocket), in one process, counted from the request
 * that first authenticates the connection (a browser token counts against the key that minted it): by
 * default a quarter of the process's maximum (1024 of MAX_CONNECTIONS), so one key, from however many
 * addresses, cannot take the whole server and lock every other tenant out (four IPv4 addresses did, each
 * under MAX_CONNECTIONS_PER_ADDRESS). A fleet sharing one key (the device key of `npm start`) fits: the
 * key's request rate (KEY_RATE_PER_SECOND) is sized for about 1000 devices on one key writing every five
 * seconds, and a claimed device has a key of its own (docs/FLEET.md); a larger fleet gets a key per device
 * or group, or `--max-connections-per-key`. Master keys (the operator's) are not counted. Over it: that
 * request is answered 429 E_TOO_MANY_CONNECTIONS_FOR_KEY, then the same notice, and the connection closes.
 */
export const CONNECTIONS_PER_KEY_SHARE_OF_MAX = 1 / 4
export function maxConnectionsPerKeyOf(maxConnections: number): number {
    return Math.max(1, Math.floor(maxConnections * CONNECTIONS_PER_KEY_SHARE_OF_MAX))
}

/**
 * Why a connection bound the server was given cannot work, or undefined. At 0 each refuses every
 * connection it counts (`--max-connections-per-key 0` refused every key but the master keys): no limit
 * of the server reads 0 as "no limit", so a 0 is refused at start with what to pass instead.
 */
export function connectionBoundProblem(bounds: { flag: string; value: number | undefined; instead: string }[]): string | undefined {
    const zero = bounds.find((b) => b.value === 0)
    return zero && `${zero.flag} 0 would refuse every connection it counts; pass at least 1 (${zero.instead})`
}

/**
 * HTTP connections on the app port (HTTPS or HTTP, from the accept until they close or become a
 * WebSocket), in all and from one remote address. Device and WebSocket connections are bounded by
 * MAX_CONNECTIONS; HTTP ones were not, and each idle one holds a descriptor until Node closes it (5 s
 * keep-alive, 10 s for headers), so an address opening 2000 a second held ~20 000 of the process's
 * descriptors, which the device port shares. With this bound the process holds at most MAX_CONNECTIONS
 * + MAX_PENDING_HANDSHAKES + 1024 (+ a few hundred refusals in flight) sockets, whatever HTTP does. A
 * browser opens at most 6 connections to a host and a REST client one or a few, so 256 per address fits
 * some 40 dashboards behind one NAT at once, and 4 addresses cannot fill the budget. Over either: closed
 * at once at the accept (no TLS handshake, no bytes), counted in feedline_http_connections_refused_total.
 */
export const MAX_HTTP_CONNECTIONS = 1024
export const MAX_HTTP_CONNECTIONS_PER_ADDRESS = 256
/** Refused HTTP connections are logged at most once per this long (with how many since), so a flood cannot flood the log. */
export const HTTP_REFUSAL_LOG_EVERY_MS = 10_000

/**
 * HTTP on the app port: headers must arrive within 10 s and a whole request within 30 s (bodies are at
 * most 16 KiB); over either: 408 E_TIMEOUT and the socket destroyed. Node looks for overdue requests only
 * every HTTP_TIMEOUT_CHECK_MS (its default, 30 s, let them run to 40-60 s), so they hold within a second.
 */
export const HTTP_HEADERS_TIMEOUT_MS = 10_000
export const HTTP_REQUEST_TIMEOUT_MS = 30_000
export const HTTP_TIMEOUT_CHECK_MS = 1000

/**
 * GET /healthz and GET /metrics (app port) per remote address (token bucket), apart from its request rate, so that a
 * load balancer's checks and a Prometheus scrape are never refused for what other clients behind their address do.
 * They ask a few times a second at most; unbounded (as they were), one client pipelining GET /metrics on one
 * connection had it rendered ~24,000 times a second (28 µs and ~7 KB each, for 40 bytes asked, no key needed),
 * most of a core. 1000 a second with bursts of 2000 holds that to ~3 % of one and leaves any fleet of checkers
 * behind one address room. Over it: 429 E_RATE_LIMITED with retry_after_ms (and Retry-After), spending the
 * address's refusal budget like any 429 (REFUSAL_BURSTS).
 */
export const MONITORING_RATE_PER_SECOND = 1000
export const MONITORING_BURST = 2000

/** [P§6] how long a client told to go away (503 shutdown, 429 full) should wait before reconnecting. */
export const RECONNECT_AFTER_MS = 2000
/** After the final notice a socket gets this long to flush before it is destroyed. */
export const CLOSE_GRACE_MS = 1000

/**
 * [fleet] Claims per remote address (token bucket). A board claims once in its life; 1/s with bursts of 100
 * lets a bench of a hundred boards powered on together behind one NAT claim at once, while an address that
 * claims over and over (a board stuck on a refusal, someone trying codes) costs the server at most one
 * signature check a second. Over it: 429 E_CLAIM_RATE_LIMITED with retry_after_ms. Wrong codes also count as
 * failed keys of the address (AUTH_FAILURES_PER_MINUTE).
 */
export const CLAIM_RATE_PER_ADDRESS = 1
export const CLAIM_BURST_PER_ADDRESS = 100
/**
 * [fleet] Claims per product, from every address: 10/s with bursts of 500, so a factory's thousand boards
 * switched on at once are all claimed within a minute and a half (they retry after retry_after_ms), and a
 * leaked batch of codes cannot make feeds faster than that. Spent only by claims that would make or re-key
 * a device (fleet/fleet.ts takeProductClaim): claims that make nothing are bounded per address.
 */
export const CLAIM_RATE_PER_PRODUCT = 10
export const CLAIM_BURST_PER_PRODUCT = 500
/**
 * [fleet] A device's last-seen time is kept in memory and written to the store this often (and at shutdown):
 * a write per request would cost the hot path a statement; the fleet view shows the in-memory time.
 */
export const DEVICE_SEEN_FLUSH_MS = 30_000
/** [fleet] a product's title, a device's name: labels, like feed titles */
export const MAX_LABEL_CHARS = 255
/** [fleet] hardware ids on one product's allow-list: a batch's worth, well under one request's 16 KiB */
export const MAX_ALLOW_LIST = 500
/**
 * [fleet] The JSON of the sampling policies a product hands its boards in a claim's answer. The whole answer
 * is one line to a board, which drops lines over 1024 bytes (src/net/framer.ts MAX_LINE_BYTES); the rest of
 * it (token, resource, device, feed, key) takes about 200. A dropped answer would be claimed again and
 * again, each time for a new key.
 */
export const MAX_CLAIM_POLICY_BYTES = 600

/**
 * [P§4] The keep-alive contracts a server announces, by profile (docs/FIRMWARE.md "Keep-alive profiles" has the
 * measurements: `npm run bench:keepalive`). `seed`: the original contract, a dead link noticed within
 * 3 s, for clients on good links. `field`: ESP32s on real Wi-Fi, where modem sleep delays what they receive
 * by up to a DTIM interval (~300 ms), each false "dead" costs a full TLS handshake (1-1.7 s of a C3, no
 * session resumption), and heartbeats are most of what an idle device sends: a heartbeat every 20 s keeps
 * NAT mappings (minutes) alive, tolerates a lost heartbeat and ~10 s of extra delay before "degraded",
 * and notices a dead link within a minute; nothing is lost meanwhile (outbox, replay from `since`).
 */
export const KEEPALIVE_PROFILES = {
    seed: { heartbeatMs: 300, faultyMs: 1000, timeoutMs: 3000 },
    field: { heartbeatMs: 20_000, faultyMs: 30_000, timeoutMs: 60_000 },
}
export type KeepaliveProfile = keyof typeof KEEPALIVE_PROFILES
/** what the device doors (TLS device port, plain TCP, attached streams) announce unless told otherwise */
export const DEVICE_KEEPALIVE_PROFILE: KeepaliveProfile = "field"
/** what the app door's WebSocket clients (dashboard page, CLI) get: browsers and tools on good links */
export const APP_KEEPALIVE_PROFILE: KeepaliveProfile = "seed"
/**
 * [fleet] The retry_after_ms of a claim refused for a reason only the operator can undo (a wrong code, a
 * revoked product or device, not on the allow-list, past the limit, claimed already): the board asks again
 * this long after, so an operator's re-arm is picked up within minutes while a board refused for good costs
 * one claim every five minutes.
 */
export const CLAIM_REFUSED_RETRY_MS = 5 * 60_000

/**
 * [PROXY protocol] A connection from a trusted proxy (--trusted-proxies) must deliver its whole PROXY header
 * within this long of its accept, else it is closed (E_PROXY_HEADER_TIMEOUT). HAProxy sends the header
 * with its first packet; the spec (haproxy doc/proxy-protocol.txt §2) asks for at least 3 s, to cover one TCP
 * retransmit. Only a trusted proxy's sockets wait for it, and the wait ends with the header: then the
 * TLS handshake's own bounds (per announced address) start.
 */
export const PROXY_HEADER_TIMEOUT_MS = 5000
/**
 * [PROXY protocol] The longest PROXY header accepted: a version 1 line is at most 107 bytes by the spec;
 * version 2 may announce up to 16 + 65535 bytes, but HAProxy's, with every TLV it can add (SSL, CN,
 * authority, unique id, CRC), stays under ~700, and the spec designs both to fit one 536-byte segment.
 * Over it: E_PROXY_HEADER_BAD, so a socket waiting for its header never holds more than this.
 */
export const MAX_PROXY_HEADER_BYTES = 2048

/**
 * The highest feed id a person may name: an explicit `"id"` of POST /feeds, a feed of a new key. Feed ids
 * are never given out twice, so a new feed's id is above every id a feed ever had or a key was made for:
 * one request naming 2^53 - 1 (a careless or hostile key that may create feeds, or a typo) left no id for
 * any later feed, and so refused every later POST /feeds without an id and every device claim, for ever.
 * 2^31 - 1 (Xively's feed ids were 32-bit) leaves the automatic ids room beyond any id named.
 */
export const MAX_FEED_ID = 2 ** 31 - 1

/**
 * [P§10] Datastreams one feed may have. Every write may name new ones (a datastream written to for the first
 * time is created), and GET /feeds/F answers with all of them at once: a key with `update` on one feed made
 * 70,000 datastreams in 20 s with 16 KiB PUTs naming 1,200 new ids each, so that feed's answer (and the memory
 * the server needs to build it) grew without end, while each such write held the shared store writer for
 * ~0.4 s (another tenant's write p99 39 -> 200 ms). A device has tens of datastreams; 1000 keeps GET /feeds/F
 * at most ~250 KB. Over it: 422 E_TOO_MANY_DATASTREAMS and nothing of the request is written.
 */
export const MAX_DATASTREAMS_PER_FEED = 1000
/**
 * The datastream ids a process holds in memory to check MAX_DATASTREAMS_PER_FEED without a query per write
 * (feed-streams.ts), ~80 bytes each: the feeds read longest ago are forgotten to make room, and read again at
 * their next write.
 */
export const MAX_COUNTED_DATASTREAMS = 200_000
