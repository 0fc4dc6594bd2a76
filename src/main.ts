// feedline firmware: the link to the server (src/net) and the board's sensors and actuators (src/app).
// Configuration comes from settings: README "Firmware configuration (settings)".
import { startDevice } from "./app/device"

await startDevice()
