// feedline firmware: the link to the server (src/net) and the board's sensors and actuators (src/app).
// Configuration comes from settings: README "Firmware configuration (settings)".
import * as ds from "@devicescript/core"
import { PROTOCOL_VERSION } from "./protocol"
import { startLink } from "./net"
import { startBoardIo } from "./app/io"

console.log(`feedline firmware, protocol v${PROTOCOL_VERSION}, simulator=${ds.isSimulator()}`)
const link = await startLink()
await startBoardIo(link)
