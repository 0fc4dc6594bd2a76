// Entry for the claim step's suite (src/net/claim.ts): a program of its own, so main-net.ts keeps its room
// under the 64 KB of function bytecode one image may hold.
import "./claim.test"
