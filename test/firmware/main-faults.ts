// Entry for the misbehaving-server suite (faults.test.ts): a program of its own, so main-net.ts keeps its
// room under the 64 KB code window and its 120 s timeout.
import "./faults.test"
