// The boards' wiring and the settings that override it.
import { describe, expect, test } from "@devicescript/test"
import { feedlineC3Board, feedlineS3Board, sensorQuantities, simBoard } from "../../src/foundation/config"
import { applyBoardSettings } from "../../src/app/config-board"

describe("board config", () => {
    test("each board reports the quantities its chips measure", () => {
        expect(sensorQuantities(simBoard()).join(",")).toBe("temp,humidity,light,rssi")
        expect(sensorQuantities(feedlineC3Board()).join(",")).toBe("temp,humidity,light,soil,rssi")
        expect(sensorQuantities(feedlineS3Board()).join(",")).toBe("temp,humidity,pressure,light,rssi")
    })
    test("settings change chip, address, pins and outputs; -1 removes; nonsense is ignored and named", () => {
        const c3 = feedlineC3Board()
        const r = applyBoardSettings(c3, { CLIMATE: "aht20", LIGHT_PIN: -1, RELAY_PIN: 4, LED_PIN: -1, SIMULATE: true })
        expect(r.errors.length).toBe(0)
        expect(r.board.climate.chip).toBe("aht20")
        expect(r.board.lightPin).toBe(undefined)
        expect(r.board.simulated).toBe(true)
        expect(r.board.switches.length).toBe(1)
        expect(r.board.switches[0].id).toBe("relay")
        expect(r.board.switches[0].pin).toBe(4)
        expect(c3.switches.length).toBe(2) // the table itself is untouched
        expect(c3.lightPin).toBe(3)
        const bad = applyBoardSettings(feedlineC3Board(), { CLIMATE: "dht11", SOIL_PIN: "two", I2C_ADDR: 0x45 })
        expect(bad.errors.join(",")).toBe("E_SETTING CLIMATE,E_SETTING SOIL_PIN")
        expect(bad.board.climate.chip).toBe("sht30")
        expect(bad.board.climate.address).toBe(0x45)
        expect(applyBoardSettings(feedlineC3Board(), { CLIMATE: "none" }).board.climate).toBe(undefined)
    })
})
