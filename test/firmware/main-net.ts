// Entry for the link's test suites (src/net): `devs run test/firmware/main-net.ts --test --test-self-exit`.
// A separate program from main.ts: together they exceed the 64 KB of function bytecode one image may hold.
import "./netparts.test"
import "./link.test"
import "./subs.test"
