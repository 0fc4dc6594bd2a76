// Firmware entry for boards/feedline_s3.board.json: the device with the one chip this board wires (BME680),
// read through its driver directly (src/sensors/chips), so no other driver and no Jacdac sensor server is
// compiled in. The pins, I2C and status LED come from the runtime flashed with
// `devs flash esp32 --board feedline_s3`, not from this program: the board import only embeds the board's
// name and a few flags in the image (`devs disasm`: dcfg). Build: npm run build. Flash + deploy:
// docs/FIRMWARE.md "Flash a real board".
import "@dsboard/feedline_s3"
import { BME680Driver } from "../sensors/chips/bme680"
import { chipSensors } from "../sensors/hardware"
import { feedlineS3Board } from "../foundation/config"
import { startDevice } from "../app/device"

await startDevice(feedlineS3Board(), {
    climate: async (chip: string, address: number) => (chip === "bme680" ? await chipSensors(new BME680Driver(address === 0x76 ? 0x76 : 0x77), chip) : undefined),
})
