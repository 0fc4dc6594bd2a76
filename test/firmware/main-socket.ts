// Entry for the socket layer's suite (src/net/socket.ts over the fake ESP32 runtime): a program of its own,
// so that main-net.ts stays well under the run's 120 s timeout on a loaded machine (it timed out at load 15).
import "./socket.test"
