// Entry for the full-heap test: a program of its own, so the heap holds the firmware and this test only
// (and the link's settings, which read the same settings the scenario writes).
import "./link-config.test"
import "./heap.test"
