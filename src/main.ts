// feedline firmware entry. The link, sensors and actuators are wired in by later modules.
import * as ds from "@devicescript/core"
import { PROTOCOL_VERSION } from "./protocol"

console.log(`feedline firmware, protocol v${PROTOCOL_VERSION}, simulator=${ds.isSimulator()}`)
