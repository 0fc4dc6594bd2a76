// Board definitions: the checks against the firmware's board table, and the offline firmware build of
// every board (`npm run build`), so a broken board file or a firmware that no longer compiles fails CI.
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { test } from "node:test"
import { FEEDLINE_C3, FEEDLINE_S3 } from "../../../src/app/config.ts"
import { checkBoard } from "../../../devs/tools/build-boards.ts"

const c3json = () => JSON.parse(readFileSync("boards/feedline_c3.board.json", "utf8"))

test("the shipped boards agree with the firmware's board table", () => {
    assert.deepEqual(checkBoard("feedline_c3", c3json(), FEEDLINE_C3), [])
    assert.deepEqual(checkBoard("feedline_s3", JSON.parse(readFileSync("boards/feedline_s3.board.json", "utf8")), FEEDLINE_S3), [])
})

test("a board file that disagrees is reported with a code and the fix", () => {
    const moved = c3json()
    moved.pins.RELAY = 4
    const p = checkBoard("feedline_c3", moved, FEEDLINE_C3)
    assert.equal(p.length, 1)
    assert.match(p[0], /^E_BOARD_PIN boards\/feedline_c3\.board\.json: pin RELAY is GPIO4, src\/app\/config\.ts feedline_c3 uses GPIO10$/)

    const s2 = c3json()
    s2.archId = "esp32s2"
    assert.match(checkBoard("feedline_c3", s2, FEEDLINE_C3)[0], /^E_BOARD_ARCH .*no TLS/)

    const noI2c = c3json()
    delete noI2c.i2c
    assert.match(checkBoard("feedline_c3", noI2c, FEEDLINE_C3)[0], /^E_BOARD_I2C .*sht30/)

    assert.match(checkBoard("other", c3json(), undefined)[0], /^E_BOARD_TABLE .*add its wiring/)
})

test("npm run build builds the firmware for every board offline and prints the sizes", { timeout: 120_000 }, () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "devs/tools/build-boards.ts"], { encoding: "utf8" })
    assert.equal(r.status, 0, r.stdout + r.stderr)
    for (const id of ["sim", "feedline_c3", "feedline_s3"]) assert.match(r.stdout, new RegExp(`^${id}\\s+\\S+\\s+\\d+ B\\s+ok`, "m"))
    console.log(r.stdout.trim())
})
