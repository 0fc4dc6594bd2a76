// Golden wire vectors for protocol v1 (docs/PROTOCOL.md). Import-free so that both the Node test
// (test/host/protocol/envelope.test.ts) and the DeviceScript test (test/firmware/protocol.test.ts) run them.
// `expect` is the canonical encoding (encodeRequest / encodeResponse) of what decoding must yield,
// or the stable error code. Both runtimes must produce these exact strings.

export interface RequestVector {
    name: string
    /** provenance: where the input comes from */
    from: string
    input: string
    expect?: string
    error?: string
    /** the token the error must carry */
    errorToken?: string
    /** [P§5a] the error is about a short-form request, so it is answered in the short form (error.short) */
    errorShort?: boolean
    /**
     * where DeviceScript refuses the input differently: its strings are UTF-8 and cannot hold a lone
     * surrogate, so its JSON.parse throws (E_BAD_JSON, no token). Refused in both runtimes either way.
     */
    deviceScriptError?: string
}

export const REQUEST_VECTORS: RequestVector[] = [
    {
        name: "xively documentation example, pretty-printed",
        from: "seeds/000 (Xively Socket Server, Request Syntax)",
        input:
            '{\n  "method" : "put",\n  "resource" : "/feeds/504",\n  "params" : {},\n  "headers" : {"X-ApiKey":"abcdef123456"},\n  "body" :\n    {\n      "version" : "1.0.0",\n      "datastreams" : [\n        {\n          "id" : "0",\n          "current_value" : "980"\n        },\n        {\n          "id" : "1",\n          "current_value" : "-261"\n        }\n      ]\n    },\n  "token" : "0x12345"\n}',
        expect:
            '{"method":"put","resource":"/feeds/504","headers":{"X-ApiKey":"abcdef123456"},"body":{"version":"1.0.0","datastreams":[{"id":"0","current_value":"980"},{"id":"1","current_value":"-261"}]},"token":"0x12345"}',
    },
    {
        name: "compact device update with datapoints",
        from: "protocol v1 §5, device batch",
        input: '{"method":"put","resource":"/feeds/1","body":{"datastreams":[{"id":"temp","datapoints":[{"at":1732250000000,"value":"21.5"}]}]},"token":"a1"}',
        expect: '{"method":"put","resource":"/feeds/1","body":{"datastreams":[{"id":"temp","datapoints":[{"at":1732250000000,"value":"21.5"}]}]},"token":"a1"}',
    },
    {
        name: "method in upper case, .json suffix and trailing slash on the resource",
        from: "protocol v1 §5 (any case; .json accepted)",
        input: '{"method":"GET","resource":"/feeds/504.json","token":"t"}',
        expect: '{"method":"get","resource":"/feeds/504","token":"t"}',
    },
    {
        name: "trailing slash",
        from: "protocol v1 §5",
        input: '{"method":"get","resource":"/feeds/504/"}',
        expect: '{"method":"get","resource":"/feeds/504"}',
    },
    {
        name: "subscribe with since",
        from: "protocol v1 §8; seeds/001 (Exosite since)",
        input: '{"method":"subscribe","resource":"/feeds/1/datastreams/led","params":{"since":"2026-11-22T05:00:00.000Z"},"token":"s1"}',
        expect: '{"method":"subscribe","resource":"/feeds/1/datastreams/led","params":{"since":"2026-11-22T05:00:00.000Z"},"token":"s1"}',
    },
    {
        name: "unsubscribe without a resource (all)",
        from: "protocol v1 §8",
        input: '{"method":"unsubscribe","token":"u"}',
        expect: '{"method":"unsubscribe","token":"u"}',
    },
    {
        name: "numbers as values are kept as numbers in the envelope",
        from: "protocol v1 §10",
        input: '{"method":"put","resource":"/feeds/1/datastreams/t","body":{"current_value":21.5}}',
        expect: '{"method":"put","resource":"/feeds/1/datastreams/t","body":{"current_value":21.5}}',
    },
    {
        name: "numeric token becomes its text",
        from: "seeds/000 (token: an incrementing counter)",
        input: '{"method":"get","resource":"/feeds/1","token":123}',
        expect: '{"method":"get","resource":"/feeds/1","token":"123"}',
    },
    {
        name: "a numeric token beyond a double's exact integers is echoed as sent",
        from: "seeds/000 (the token is the client's, echoed in its response); device-port audit 2026-12-06 (echoed as 12345678901234567000)",
        input: '{"method":"get","resource":"/feeds/1","token":12345678901234567890}',
        expect: '{"method":"get","resource":"/feeds/1","token":"12345678901234567890"}',
    },
    {
        name: "numeric tokens in exponent form, with a fraction, negative zero: their text as written",
        from: "protocol v1 §5 (echoed unchanged); DeviceScript prints numbers with 7 significant digits",
        input: '{"method":"get","resource":"/feeds/1","token" : -12.50E+3 }',
        expect: '{"method":"get","resource":"/feeds/1","token":"-12.50E+3"}',
    },
    { name: "a numeric token 1e3", from: "protocol v1 §5", input: '{"method":"get","resource":"/feeds/1","token":1e3}', expect: '{"method":"get","resource":"/feeds/1","token":"1e3"}' },
    { name: "a numeric token -0", from: "protocol v1 §5", input: '{"method":"get","resource":"/feeds/1","token":-0}', expect: '{"method":"get","resource":"/feeds/1","token":"-0"}' },
    {
        name: "a numeric token with more digits than a double holds after the point",
        from: "protocol v1 §5",
        input: '{"method":"get","resource":"/feeds/1","token":0.1234567890123456789}',
        expect: '{"method":"get","resource":"/feeds/1","token":"0.1234567890123456789"}',
    },
    {
        name: "a numeric token too large for a double (parses as Infinity) is still its text",
        from: "protocol v1 §5",
        input: '{"method":"get","resource":"/feeds/1","token":1e400}',
        expect: '{"method":"get","resource":"/feeds/1","token":"1e400"}',
    },
    {
        name: "the numeric token is the last top-level \"token\" (as JSON.parse reads it), not one in the body or an earlier one",
        from: "hostile input (duplicate members, a token member inside the body, an escaped member name)",
        input: '{"token":"first","method":"put","resource":"/feeds/1","body":{"token":7,"x":["token",8]},"tok\\u0065n":90071992547409930}',
        expect: '{"method":"put","resource":"/feeds/1","body":{"token":7,"x":["token",8]},"token":"90071992547409930"}',
    },
    {
        name: "short form: a numeric token is echoed as sent",
        from: "protocol v1 §5a, §5",
        input: '{"m":"get","r":"/feeds/1","b":{"t":1},"t":12345678901234567890}',
        expect: '{"m":"get","r":"/feeds/1","b":{"t":1},"t":"12345678901234567890"}',
    },
    {
        name: "a numeric token of more than 64 characters",
        from: "protocol v1 §5 (token at most 64 chars)",
        input: '{"method":"get","resource":"/feeds/1","token":12345678901234567890123456789012345678901234567890123456789012345}',
        error: "E_BAD_TOKEN",
    },
    {
        name: "an error carries the numeric token as sent",
        from: "protocol v1 §5, §6",
        input: '{"method":"patch","resource":"/feeds/1","token":18446744073709551615}',
        error: "E_BAD_METHOD",
        errorToken: "18446744073709551615",
    },
    {
        name: "non-ASCII text is escaped on output",
        from: "protocol v1 §3 (ASCII only)",
        input: '{"method":"put","resource":"/feeds/1/datastreams/t","body":{"current_value":"caf\\u00e9 \\u2103"}}',
        expect: '{"method":"put","resource":"/feeds/1/datastreams/t","body":{"current_value":"caf\\u00e9 \\u2103"}}',
    },
    {
        name: "unknown fields are ignored, empty params dropped",
        from: "protocol v1 §5",
        input: '{"method":"get","resource":"/feeds","params":{},"extra":[1,2,3],"token":"x"}',
        expect: '{"method":"get","resource":"/feeds","token":"x"}',
    },
    {
        name: "whitespace and CRLF inside the object",
        from: "protocol v1 §3 (openssl s_client paste)",
        input: '\r\n {"method" :\r\n "get", "resource":"/feeds/7"}\r\n',
        expect: '{"method":"get","resource":"/feeds/7"}',
    },
    { name: "not JSON", from: "malformed", input: '{"method":"get",', error: "E_BAD_JSON" },
    { name: "array instead of object", from: "malformed", input: '[{"method":"get"}]', error: "E_NOT_OBJECT" },
    { name: "a bare string", from: "malformed", input: '"get"', error: "E_NOT_OBJECT" },
    { name: "unknown method", from: "protocol v1 §5", input: '{"method":"patch","resource":"/feeds/1","token":"m"}', error: "E_BAD_METHOD", errorToken: "m" },
    { name: "method of the wrong type", from: "malformed", input: '{"method":7,"resource":"/feeds/1"}', error: "E_BAD_METHOD" },
    { name: "missing method", from: "malformed", input: '{"resource":"/feeds/1","token":"q"}', error: "E_NO_METHOD", errorToken: "q" },
    { name: "missing resource", from: "protocol v1 §5", input: '{"method":"get","token":"r"}', error: "E_NO_RESOURCE", errorToken: "r" },
    { name: "resource without leading slash", from: "seeds/000 (leading slash)", input: '{"method":"get","resource":"feeds/1"}', error: "E_BAD_RESOURCE" },
    { name: "dot-dot segment", from: "path trick", input: '{"method":"get","resource":"/feeds/1/../2"}', error: "E_BAD_RESOURCE" },
    { name: "encoded slash", from: "path trick", input: '{"method":"get","resource":"/feeds/1%2F2"}', error: "E_BAD_RESOURCE" },
    { name: "double slash", from: "path trick", input: '{"method":"get","resource":"/feeds//2"}', error: "E_BAD_RESOURCE" },
    { name: "double .json suffix", from: "fuzzing (the normal form must be stable)", input: '{"method":"get","resource":"/feeds/1.json.json"}', error: "E_BAD_RESOURCE" },
    { name: "param too large for a double", from: "fuzzing (1e400 parses as Infinity)", input: '{"method":"get","resource":"/feeds/1","params":{"limit":1e400},"token":"p"}', error: "E_BAD_PARAMS", errorToken: "p" },
    { name: "NUL in resource", from: "path trick", input: '{"method":"get","resource":"/feeds/1\\u0000"}', error: "E_BAD_RESOURCE" },
    { name: "non-ASCII resource", from: "path trick", input: '{"method":"get","resource":"/feeds/\\u00e9"}', error: "E_BAD_RESOURCE" },
    {
        name: "over-long token",
        from: "protocol v1 §5 (token at most 64 chars)",
        input: '{"method":"get","resource":"/feeds/1","token":"01234567890123456789012345678901234567890123456789012345678901234"}',
        error: "E_BAD_TOKEN",
    },
    {
        name: "a token of 64 ASCII characters",
        from: "protocol v1 §5 (token at most 64 bytes of UTF-8)",
        input: '{"method":"get","resource":"/feeds/1","token":"0123456789012345678901234567890123456789012345678901234567890123"}',
        expect: '{"method":"get","resource":"/feeds/1","token":"0123456789012345678901234567890123456789012345678901234567890123"}',
    },
    {
        name: "a token of 32 two-byte characters: 64 bytes",
        from: "protocol v1 §5 (token at most 64 bytes of UTF-8)",
        input: '{"method":"get","resource":"/feeds/1","token":"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"}',
        expect: '{"method":"get","resource":"/feeds/1","token":"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"}',
    },
    {
        name: "a token of 33 two-byte characters: 66 bytes",
        from: "protocol v1 §5 (token at most 64 bytes of UTF-8; was: 64 UTF-16 units in Node, 64 code points in DeviceScript)",
        input: '{"method":"get","resource":"/feeds/1","token":"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"}',
        error: "E_BAD_TOKEN",
    },
    {
        name: "a token of 22 three-byte characters: 66 bytes",
        from: "protocol v1 §5 (token at most 64 bytes of UTF-8; was: 64 UTF-16 units in Node, 64 code points in DeviceScript)",
        input: '{"method":"get","resource":"/feeds/1","token":"\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac"}',
        error: "E_BAD_TOKEN",
    },
    {
        name: "a token of 16 four-byte characters (surrogate pairs): 64 bytes",
        from: "protocol v1 §5 (token at most 64 bytes of UTF-8)",
        input: '{"method":"get","resource":"/feeds/1","token":"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00"}',
        expect: '{"method":"get","resource":"/feeds/1","token":"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00"}',
    },
    {
        name: "a token of 17 four-byte characters: 68 bytes (34 UTF-16 units, 17 code points)",
        from: "protocol v1 §5 (token at most 64 bytes of UTF-8; was: 64 UTF-16 units in Node, 64 code points in DeviceScript)",
        input: '{"method":"get","resource":"/feeds/1","token":"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00"}',
        error: "E_BAD_TOKEN",
    },
    { name: "token of the wrong type", from: "malformed", input: '{"method":"get","resource":"/feeds/1","token":{"a":1}}', error: "E_BAD_TOKEN" },
    { name: "params not an object", from: "malformed", input: '{"method":"get","resource":"/feeds/1","params":"a=1"}', error: "E_BAD_PARAMS" },
    { name: "nested param", from: "malformed", input: '{"method":"get","resource":"/feeds/1","params":{"a":{"b":1}}}', error: "E_BAD_PARAMS" },
    { name: "header not a string", from: "malformed", input: '{"method":"get","resource":"/feeds/1","headers":{"X-ApiKey":5}}', error: "E_BAD_HEADERS" },
    {
        name: "brackets inside strings do not count towards the depth",
        from: "protocol v1 §5 (depth measured on the text, outside strings)",
        input: '{"method":"put","resource":"/feeds/1","body":{"current_value":"[[[[[[[[[[{{{{"},"token":"b"}',
        expect: '{"method":"put","resource":"/feeds/1","body":{"current_value":"[[[[[[[[[[{{{{"},"token":"b"}',
    },
    {
        name: "a surrogate pair (one character) is text",
        from: "protocol v1 §5",
        input: '{"method":"put","resource":"/feeds/1/datastreams/t","body":{"current_value":"\\ud83d\\ude00"},"token":"e"}',
        expect: '{"method":"put","resource":"/feeds/1/datastreams/t","body":{"current_value":"\\ud83d\\ude00"},"token":"e"}',
    },
    {
        name: "a lone high surrogate",
        from: "issue 11 item 8 (stored as U+FFFD and acknowledged)",
        input: '{"method":"put","resource":"/feeds/1/datastreams/t","body":{"current_value":"\\ud800"},"token":"s"}',
        error: "E_BAD_UTF8",
        errorToken: "s",
        deviceScriptError: "E_BAD_JSON",
    },
    {
        name: "a lone low surrogate in a member name",
        from: "issue 11 item 8",
        input: '{"method":"put","resource":"/feeds/1","body":{"\\udc00x":1},"token":"k"}',
        error: "E_BAD_UTF8",
        errorToken: "k",
        deviceScriptError: "E_BAD_JSON",
    },
    { name: "an xml suffix", from: "seeds/000 (Xively formats); issue 11 item 16", input: '{"method":"get","resource":"/feeds/1.xml","token":"x"}', error: "E_BAD_FORMAT", errorToken: "x" },
    {
        name: "a csv suffix on history",
        from: "Xively API v2 (.csv); issue 11 item 16",
        input: '{"method":"get","resource":"/feeds/1/datastreams/t/datapoints.csv/","token":"c"}',
        error: "E_BAD_FORMAT",
        errorToken: "c",
    },
    { name: "backslash in the resource", from: "path trick (issue 11 item 10)", input: '{"method":"get","resource":"/feeds\\\\1"}', error: "E_BAD_RESOURCE" },
    { name: "percent-escaped dot-dot", from: "path trick (issue 11 item 10)", input: '{"method":"get","resource":"/feeds/%2e%2e/keys"}', error: "E_BAD_RESOURCE" },
    {
        name: "deep nesting",
        from: "hostile input",
        input: '{"method":"put","resource":"/feeds/1","body":{"a":[[[[[[[[[[1]]]]]]]]]]},"token":"d"}',
        error: "E_TOO_DEEP",
        errorToken: "d",
    },
    {
        name: "short form: a one-value device update",
        from: "protocol v1 §5a (short form for metered links)",
        input: '{"r":"/feeds/1","b":{"datastreams":[{"id":"temp","datapoints":[{"at":1732250000000,"value":"21.5"}]}]},"t":"a1"}',
        expect: '{"r":"/feeds/1","b":{"datastreams":[{"id":"temp","datapoints":[{"at":1732250000000,"value":"21.5"}]}]},"t":"a1"}',
    },
    {
        name: "short form: \"m\":\"put\" written out is the same request",
        from: "protocol v1 §5a",
        input: '{"m":"PUT","r":"/feeds/1","b":{"datastreams":[{"id":"temp","datapoints":[{"at":1732250000000,"value":"21.5"}]}]},"t":"a1"}',
        expect: '{"r":"/feeds/1","b":{"datastreams":[{"id":"temp","datapoints":[{"at":1732250000000,"value":"21.5"}]}]},"t":"a1"}',
    },
    {
        name: "short form: the key once, params, method in upper case, .json suffix",
        from: "protocol v1 §5a, §5, §7",
        input: '{"m":"SUBSCRIBE","r":"/feeds/1/datastreams/led.json","p":{"since":1732250000000},"h":{"X-ApiKey":"k1"},"t":"s"}',
        expect: '{"m":"subscribe","r":"/feeds/1/datastreams/led","p":{"since":1732250000000},"h":{"X-ApiKey":"k1"},"t":"s"}',
    },
    {
        name: "short form only without \"method\": the long names win, the short ones are unknown members",
        from: "protocol v1 §5a",
        input: '{"method":"get","m":"put","resource":"/feeds/2","r":"/feeds/1","token":"y","t":"x"}',
        expect: '{"method":"get","resource":"/feeds/2","token":"y"}',
    },
    {
        name: "a long-form request without a method is not a short put",
        from: "protocol v1 §5, §5a",
        input: '{"resource":"/feeds/1","r":"/feeds/1","body":{},"t":"x"}',
        error: "E_NO_METHOD",
    },
    {
        name: "short form without a resource: refused with its token, in the short form",
        from: "protocol v1 §5a, §5",
        input: '{"m":"get","t":"q"}',
        error: "E_NO_RESOURCE",
        errorToken: "q",
        errorShort: true,
    },
    {
        name: "short form: a bad resource is answered in the short form",
        from: "protocol v1 §5a (device-port audit 2026-12-06: answered in the long form)",
        input: '{"r":"/feeds/1/../2","t":"r"}',
        error: "E_BAD_RESOURCE",
        errorToken: "r",
        errorShort: true,
    },
    { name: "short form: a bad method", from: "protocol v1 §5a", input: '{"m":"patch","r":"/feeds/1","t":"m"}', error: "E_BAD_METHOD", errorToken: "m", errorShort: true },
    { name: "short form: an empty method", from: "protocol v1 §5a", input: '{"m":"","r":"/feeds/1","t":"n"}', error: "E_NO_METHOD", errorToken: "n", errorShort: true },
    { name: "short form: a csv suffix", from: "protocol v1 §5a", input: '{"m":"get","r":"/feeds/1.csv","t":"c"}', error: "E_BAD_FORMAT", errorToken: "c", errorShort: true },
    { name: "short form: params not an object", from: "protocol v1 §5a", input: '{"m":"get","r":"/feeds/1","p":"a=1","t":"p"}', error: "E_BAD_PARAMS", errorToken: "p", errorShort: true },
    { name: "short form: a header not a string", from: "protocol v1 §5a", input: '{"r":"/feeds/1","h":{"X-ApiKey":5},"t":"h"}', error: "E_BAD_HEADERS", errorToken: "h", errorShort: true },
    { name: "short form: a token of the wrong type", from: "protocol v1 §5a", input: '{"r":"/feeds/1","t":[1]}', error: "E_BAD_TOKEN", errorShort: true },
    {
        name: "short form: nesting too deep",
        from: "protocol v1 §5a, §5",
        input: '{"r":"/feeds/1","b":{"a":[[[[[[[[[[1]]]]]]]]]]},"t":"d"}',
        error: "E_TOO_DEEP",
        errorToken: "d",
        errorShort: true,
    },
    {
        name: "a lone surrogate as the token: refused without it (an answer holds only Unicode text)",
        from: "protocol v1 §5 (the token echoed when one can be read)",
        input: '{"method":"get","resource":"/feeds/1","token":"\\udc00"}',
        error: "E_BAD_UTF8",
        deviceScriptError: "E_BAD_JSON",
    },
    {
        name: "short form: a lone surrogate",
        from: "protocol v1 §5a, §5",
        input: '{"r":"/feeds/1","b":{"v":"\\ud800"},"t":"s"}',
        error: "E_BAD_UTF8",
        errorToken: "s",
        errorShort: true,
        deviceScriptError: "E_BAD_JSON",
    },
]

export interface ServerLineVector {
    name: string
    input: string
    kind: string
    /** canonical re-encoding of the response, for kind "response" */
    expect?: string
    /** [P§6] for kind "response": whether it is a connection notice (isNotice) */
    notice?: boolean
    /**
     * the kind in the DeviceScript runtime where it differs: its strings are UTF-8, and its JSON.parse refuses an
     * escaped lone surrogate (SyntaxError: a bad line, counted, never a panic); Node's keeps it
     */
    deviceScriptKind?: string
}

export const SERVER_LINE_VECTORS: ServerLineVector[] = [
    { name: "heartbeat", input: "", kind: "heartbeat" },
    { name: "heartbeat with CR", input: "\r", kind: "heartbeat" },
    {
        name: "welcome",
        input: '{"welcome":"feedline/0.1.0","session":"s1","time":1732250000000,"heartbeat":300,"faulty":1000,"timeout":3000}',
        kind: "welcome",
    },
    {
        name: "response from the documentation",
        input: '{"token":"0x12345","status":200,"resource":"/feeds/504"}',
        kind: "response",
        expect: '{"token":"0x12345","status":200,"resource":"/feeds/504"}',
    },
    {
        name: "push",
        input: '{"token":"s1","status":200,"resource":"/feeds/1/datastreams/led","body":{"id":"led","current_value":"1","at":"2026-11-22T05:00:00.000Z"}}',
        kind: "response",
        expect: '{"token":"s1","status":200,"resource":"/feeds/1/datastreams/led","body":{"id":"led","current_value":"1","at":"2026-11-22T05:00:00.000Z"}}',
    },
    {
        name: "error response",
        input: '{"token":"a","status":401,"resource":"/feeds/1","body":{"title":"Unauthorized","errors":"X-ApiKey is missing"}}',
        kind: "response",
        expect: '{"token":"a","status":401,"resource":"/feeds/1","body":{"title":"Unauthorized","errors":"X-ApiKey is missing"}}',
    },
    {
        name: "reply to a request without token: a response, not a notice",
        input: '{"status":200,"resource":"/feeds/504","body":{"id":504}}',
        kind: "response",
        expect: '{"status":200,"resource":"/feeds/504","body":{"id":504}}',
        notice: false,
    },
    {
        name: "error reply to a request without token: a response, not a notice",
        input: '{"status":404,"resource":"/feeds/9","body":{"title":"Not Found","errors":"no feed 9","code":"E_NOT_FOUND"}}',
        kind: "response",
        expect: '{"status":404,"resource":"/feeds/9","body":{"title":"Not Found","errors":"no feed 9","code":"E_NOT_FOUND"}}',
        notice: false,
    },
    {
        name: "connection notice: marked",
        input: '{"notice":true,"status":503,"body":{"title":"Service Unavailable","errors":"the server is shutting down","code":"E_SHUTTING_DOWN","retry_after_ms":2400}}',
        kind: "response",
        expect: '{"notice":true,"status":503,"body":{"title":"Service Unavailable","errors":"the server is shutting down","code":"E_SHUTTING_DOWN","retry_after_ms":2400}}',
        notice: true,
    },
    {
        name: "a response with a token is never a notice",
        input: '{"token":"a","status":503,"resource":"/feeds/1","body":{"code":"E_STORE_FAILED"}}',
        kind: "response",
        expect: '{"token":"a","status":503,"resource":"/feeds/1","body":{"code":"E_STORE_FAILED"}}',
        notice: false,
    },
    { name: "garbage", input: "HTTP/1.1 400 Bad Request", kind: "invalid" },
    {
        name: "a push holding \\uffff: a bad line (the DeviceScript runtime's JSON.parse panics on it; the server stores none)",
        input: '{"token":"s1","status":200,"resource":"/feeds/1/datastreams/led","body":{"id":"led","current_value":"1\\uffff","at":"2026-11-22T05:00:00.000Z"}}',
        kind: "invalid",
    },
    { name: "\\uFFFE in upper case: a bad line", input: '{"token":"s1","status":200,"body":{"current_value":"\\uFFFE"}}', kind: "invalid" },
    {
        name: "a backslash, then the text uffff: no escape, a response",
        input: '{"token":"s1","status":200,"body":{"current_value":"\\\\uffff"}}',
        kind: "response",
        expect: '{"token":"s1","status":200,"body":{"current_value":"\\\\uffff"}}',
    },
    // \u escapes [P§10]: the server writes every non-ASCII character so, and echoes a request's token as sent (a
    // 400 E_BAD_UTF8 answer included, whose token may be a lone surrogate). Never a panic, never a token matched wrongly
    {
        name: "400 E_BAD_UTF8 echoing a lone high surrogate as the token: the device cannot read it (no token of its own matches)",
        input: '{"t":"\\ud800","s":400,"b":{"code":"E_BAD_UTF8"}}',
        kind: "response",
        expect: '{"t":"\\ud800","s":400,"b":{"code":"E_BAD_UTF8"}}',
        deviceScriptKind: "invalid",
    },
    {
        name: "a lone surrogate (\\ud831): not read as a device token (a parser that kept its low byte would read '1')",
        input: '{"t":"\\ud831","s":400,"b":{"code":"E_BAD_UTF8"}}',
        kind: "response",
        expect: '{"t":"\\ud831","s":400,"b":{"code":"E_BAD_UTF8"}}',
        deviceScriptKind: "invalid",
    },
    {
        name: "a push holding a lone low surrogate",
        input: '{"token":"s1","status":200,"resource":"/feeds/1/datastreams/led","body":{"id":"led","current_value":"\\udc00","at":"2026-11-22T05:00:00.000Z"}}',
        kind: "response",
        expect: '{"token":"s1","status":200,"resource":"/feeds/1/datastreams/led","body":{"id":"led","current_value":"\\udc00","at":"2026-11-22T05:00:00.000Z"}}',
        deviceScriptKind: "invalid",
    },
    {
        name: "a high surrogate, then an escape that is no low one",
        input: '{"token":"s1","status":200,"body":{"current_value":"\\ud800\\u0031"}}',
        kind: "response",
        expect: '{"token":"s1","status":200,"body":{"current_value":"\\ud8001"}}',
        deviceScriptKind: "invalid",
    },
    {
        name: "a lone surrogate as a member name",
        input: '{"token":"s1","status":200,"body":{"\\ud800":1}}',
        kind: "response",
        expect: '{"token":"s1","status":200,"body":{"\\ud800":1}}',
        deviceScriptKind: "invalid",
    },
    {
        name: "a surrogate pair (upper-case hex too) in the token and a value: one character, the same in both runtimes",
        input: '{"t":"\\uD83D\\uDE00","b":{"id":"led","current_value":"\\ud83d\\ude00x"}}',
        kind: "response",
        expect: '{"t":"\\ud83d\\ude00","b":{"id":"led","current_value":"\\ud83d\\ude00x"}}',
    },
    {
        name: "\\u0000 and \\u00e9 in a value: read (an older server stored NUL; this one refuses it at the door)",
        input: '{"token":"s1","status":200,"body":{"current_value":"1\\u0000\\u00e9"}}',
        kind: "response",
        expect: '{"token":"s1","status":200,"body":{"current_value":"1\\u0000\\u00e9"}}',
    },
    { name: "a malformed escape (\\u12): a bad line", input: '{"token":"s1","status":200,"body":{"current_value":"\\u12"}}', kind: "invalid" },
    { name: "an escape with a letter that is no hex digit: a bad line", input: '{"token":"s1","status":200,"body":{"current_value":"\\u0g00"}}', kind: "invalid" },
    { name: "an escape cut by the line's end: a bad line", input: '{"token":"s1","status":200,"body":{"current_value":"\\u00', kind: "invalid" },
    { name: "array", input: "[1,2]", kind: "invalid" },
    { name: "object without status", input: '{"hello":1}', kind: "invalid" },
    {
        name: "short answer to a short-form request (200: no \"s\")",
        input: '{"t":"a1"}',
        kind: "response",
        expect: '{"t":"a1"}',
        notice: false,
    },
    {
        name: "short answer with \"s\":200 written out",
        input: '{"t":"a1","s":200}',
        kind: "response",
        expect: '{"t":"a1"}',
        notice: false,
    },
    {
        name: "short 200 answer with a body",
        input: '{"t":"g","b":{"id":"temp","current_value":"21.5"}}',
        kind: "response",
        expect: '{"t":"g","b":{"id":"temp","current_value":"21.5"}}',
        notice: false,
    },
    { name: "short answer with a non-number status", input: '{"t":"a1","s":"200"}', kind: "invalid" },
    {
        name: "short error answer",
        input: '{"t":"a2","s":404,"b":{"title":"Not Found","errors":"feed 9 does not exist","code":"E_NOT_FOUND"}}',
        kind: "response",
        expect: '{"t":"a2","s":404,"b":{"title":"Not Found","errors":"feed 9 does not exist","code":"E_NOT_FOUND"}}',
        notice: false,
    },
]

/** The one-datastream update a device sends most often; its byte count is printed by both tests. */
export const ONE_VALUE_UPDATE = {
    method: "put",
    resource: "/feeds/1",
    body: { datastreams: [{ id: "temp", datapoints: [{ at: 1732250000000, value: "21.5" }] }] },
    token: "a1",
}
export const ONE_VALUE_UPDATE_LINE =
    '{"method":"put","resource":"/feeds/1","body":{"datastreams":[{"id":"temp","datapoints":[{"at":1732250000000,"value":"21.5"}]}]},"token":"a1"}'

/** The same update as the firmware writes it, in the short form [P§5a] (src/net/outbox.ts encodeBatch). */
export const ONE_VALUE_UPDATE_SHORT_LINE = '{"r":"/feeds/1","b":{"datastreams":[{"id":"temp","datapoints":[{"at":1732250000000,"value":"21.5"}]}]},"t":"a1"}'

/**
 * [P§3] encode() takes the runtime's JSON.stringify where its bytes are provably encodeByHand()'s. `expect`
 * is what both paths write, in both runtimes. `native`: JSON.stringify's own text in both runtimes (the
 * firmware's lines are such); the others show each reason the native text is refused somewhere: escapes
 * (Node writes \b and \f, where this encoder writes \u0008 and \u000c), DEL (left raw), non-ASCII (the
 * DeviceScript simulator escapes each UTF-8 byte of it), an undefined array element (DeviceScript writes
 * `undefined`).
 */
export interface EncodeVector {
    name: string
    value: any
    expect: string
    native: boolean
}

export const ENCODE_VECTORS: EncodeVector[] = [
    {
        name: "the firmware's one-value update",
        value: { m: undefined, r: "/feeds/1", p: undefined, h: { "X-ApiKey": "k3Y_-.0123456789" }, b: { datastreams: [{ id: "temp", datapoints: [{ at: 1732250000000, value: "21.5" }] }] }, t: "a1" },
        expect: '{"r":"/feeds/1","h":{"X-ApiKey":"k3Y_-.0123456789"},"b":{"datastreams":[{"id":"temp","datapoints":[{"at":1732250000000,"value":"21.5"}]}]},"t":"a1"}',
        native: true,
    },
    { name: "short answer, no body", value: { t: "a1", s: undefined, b: undefined }, expect: '{"t":"a1"}', native: true },
    {
        name: "numbers, booleans, null (7 significant digits or fewer: DeviceScript prints no more)",
        value: { n: 21.5, neg: -3, zero: -0, small: 0.001, no: NaN, inf: -Infinity, yes: true, nope: false, nil: null, at: 1763790000000 },
        expect: '{"n":21.5,"neg":-3,"zero":0,"small":0.001,"no":null,"inf":null,"yes":true,"nope":false,"nil":null,"at":1763790000000}',
        native: true,
    },
    { name: "empty and nested", value: { a: [], o: {}, deep: [{ b: [{ c: "d" }] }] }, expect: '{"a":[],"o":{},"deep":[{"b":[{"c":"d"}]}]}', native: true },
    { name: "DEL, which both runtimes' JSON.stringify leave raw", value: { del: "a\u007fb" }, expect: '{"del":"a\\u007fb"}', native: false },
    { name: "a plain string", value: "plain", expect: '"plain"', native: true },
    {
        name: "quotes, backslashes and control characters",
        value: { text: 'say "hi"', path: "a\\b", nl: "a\nb\r\tc", ctl: "\u0001\u0008\u000c\u001f" },
        expect: '{"text":"say \\"hi\\"","path":"a\\\\b","nl":"a\\nb\\r\\tc","ctl":"\\u0001\\u0008\\u000c\\u001f"}',
        native: false,
    },
    { name: "non-ASCII", value: { title: "Küche 21°C", emoji: "😀" }, expect: '{"title":"K\\u00fcche 21\\u00b0C","emoji":"\\ud83d\\ude00"}', native: false },
    { name: "an undefined array element", value: [1, undefined, null, "x"], expect: '[1,null,null,"x"]', native: false },
    { name: "undefined", value: undefined, expect: "null", native: false },
    { name: "the word undefined in a string", value: { word: "undefined" }, expect: '{"word":"undefined"}', native: false },
]
