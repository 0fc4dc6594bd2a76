// Board selection and the settings that override a board's wiring.
import { describe, expect, test } from "@devicescript/test"
import { FEEDLINE_C3, FEEDLINE_S3, sensorQuantities, SIM_BOARD } from "../../src/app/config"
import { applyBoardSettings, GENERIC_BOARD, selectBoard } from "../../src/app/config-board"

describe("board config", () => {
    test("BOARD setting, then the simulator, then the runtime's board id, else generic", () => {
        expect(selectBoard("feedline_s3", true, "wasm").id).toBe("feedline_s3")
        expect(selectBoard(undefined, true, "wasm").id).toBe("sim")
        expect(selectBoard(undefined, false, "feedline_c3").id).toBe("feedline_c3")
        expect(selectBoard("nonsense", false, "esp32c3_bare").id).toBe(GENERIC_BOARD.id)
    })
    test("each board reports the quantities its chips measure", () => {
        expect(sensorQuantities(SIM_BOARD).join(",")).toBe("temp,humidity,light,rssi")
        expect(sensorQuantities(FEEDLINE_C3).join(",")).toBe("temp,humidity,light,soil,rssi")
        expect(sensorQuantities(FEEDLINE_S3).join(",")).toBe("temp,humidity,pressure,light,rssi")
    })
    test("settings change chip, address, pins and outputs; -1 removes; nonsense is ignored and named", () => {
        const r = applyBoardSettings(FEEDLINE_C3, { CLIMATE: "aht20", LIGHT_PIN: -1, RELAY_PIN: 4, LED_PIN: -1, SIMULATE: true })
        expect(r.errors.length).toBe(0)
        expect(r.board.climate.chip).toBe("aht20")
        expect(r.board.lightPin).toBe(undefined)
        expect(r.board.simulated).toBe(true)
        expect(r.board.switches.length).toBe(1)
        expect(r.board.switches[0].id).toBe("relay")
        expect(r.board.switches[0].pin).toBe(4)
        expect(FEEDLINE_C3.switches.length).toBe(2) // the table itself is untouched
        expect(FEEDLINE_C3.lightPin).toBe(3)
        const bad = applyBoardSettings(FEEDLINE_C3, { CLIMATE: "dht11", SOIL_PIN: "two", I2C_ADDR: 0x45 })
        expect(bad.errors.join(",")).toBe("E_SETTING CLIMATE,E_SETTING SOIL_PIN")
        expect(bad.board.climate.chip).toBe("sht30")
        expect(bad.board.climate.address).toBe(0x45)
        expect(applyBoardSettings(FEEDLINE_C3, { CLIMATE: "none" }).board.climate).toBe(undefined)
    })
})
