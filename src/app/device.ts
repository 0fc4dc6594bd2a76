// Starts a whole device: the link to the server (src/net) and the board's sensors and actuators.
// src/main.ts (the simulator) and src/boards/<id>.ts call it with the sensor drivers their build carries;
// `npm start` and the tests call it after injecting settings.
import * as ds from "@devicescript/core"
import { PROTOCOL_VERSION } from "../protocol"
import { startLink } from "../net"
import { SensorDrivers } from "../sensors/sensor"
import { BoardConfig } from "../foundation/config"
import { startBoardIo } from "./io"

/** `board`: the wiring the build runs with (settings may override it); `drivers`: what it can start. */
export async function startDevice(board: BoardConfig, drivers: SensorDrivers) {
    console.log(`feedline firmware, protocol v${PROTOCOL_VERSION}, simulator=${ds.isSimulator()}`)
    const link = await startLink()
    await startBoardIo(link, board, drivers)
    return link
}
