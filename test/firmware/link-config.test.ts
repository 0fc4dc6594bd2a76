// Link settings as the device reads them (src/net/config.ts).
import { describe, expect, test } from "@devicescript/test"
import { writeSetting } from "@devicescript/settings"
import { readLinkConfig } from "../../src/net/config"

describe("link settings", () => {
    test("an all-digit API_KEY (stored as a JSON number, as deploying .env does) stays the same text", async () => {
        await writeSetting("API_KEY", 123456789012345)
        expect((await readLinkConfig()).apiKey).toBe("123456789012345")
        await writeSetting("API_KEY", "0012345") // quoted in .env, or not valid JSON: text
        expect((await readLinkConfig()).apiKey).toBe("0012345")
    })
    test("an all-digit value too long to be exact in a number is refused (E_SETTING), not sent rounded", async () => {
        await writeSetting("API_KEY", 12345678901234567)
        expect((await readLinkConfig()).apiKey).toBe("")
        await writeSetting("API_KEY", "key")
    })
    test("the boot counter: BOOTS as kept, plus this start (1 on a fresh board)", async () => {
        expect((await readLinkConfig()).boots).toBe(1)
        await writeSetting("BOOTS", 41)
        expect((await readLinkConfig()).boots).toBe(42)
    })
})
