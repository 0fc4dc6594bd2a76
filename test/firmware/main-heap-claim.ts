// Entry for the full-heap test on a board that claims its key: a program of its own (startLink() runs once
// per program), so the heap holds the firmware and this test only.
import "./heap-claim.test"
