// Firmware entry for boards/feedline_c3.board.json: the device with the one chip this board wires (SHT30),
// read through its driver directly (src/sensors/chips), so no other driver and no Jacdac sensor server is
// compiled in. The pins, I2C and status LED come from the runtime flashed with
// `devs flash esp32 --board feedline_c3`, not from this program: the board import only embeds the board's
// name and a few flags in the image (`devs disasm`: dcfg). Build: npm run build. Flash + deploy:
// docs/FIRMWARE.md "Flash a real board".
import "@dsboard/feedline_c3"
import { SHT30Driver } from "../sensors/chips/sht30"
import { chipSensors } from "../sensors/hardware"
import { feedlineC3Board } from "../foundation/config"
import { startDevice } from "../app/device"

await startDevice(feedlineC3Board(), {
    climate: async (chip: string, address: number) => (chip === "sht30" ? await chipSensors(new SHT30Driver(address === 0x45 ? 0x45 : 0x44), chip) : undefined),
})
