// feedline firmware for the simulator (and any board without an entry in src/boards/): the link to the
// server (src/net) and the board's sensors and actuators (src/app), with simulated sensors and no chip
// driver. Configuration comes from settings: docs/FIRMWARE.md "Firmware configuration (settings)".
import * as ds from "@devicescript/core"
import { genericBoard, simBoard } from "./foundation/config"
import { startDevice } from "./app/device"
import { SIMULATOR_DRIVERS } from "./sensors/simulated"

await startDevice(ds.isSimulator() ? simBoard() : genericBoard(), SIMULATOR_DRIVERS)
