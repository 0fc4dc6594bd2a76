// Entry for the full-heap test: a program of its own, so the heap holds the firmware and this test only.
import "./heap.test"
