// Starts a whole device: the link to the server (src/net) and the board's sensors and actuators.
// src/main.ts calls it; `npm start` and the tests call it after injecting settings.
import * as ds from "@devicescript/core"
import { PROTOCOL_VERSION } from "../protocol"
import { startLink } from "../net"
import { startBoardIo } from "./io"

export async function startDevice() {
    console.log(`feedline firmware, protocol v${PROTOCOL_VERSION}, simulator=${ds.isSimulator()}`)
    const link = await startLink()
    await startBoardIo(link)
    return link
}
