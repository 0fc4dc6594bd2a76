// Board definitions: the checks against the firmware's board table, and the offline firmware build of
// every board (`npm run build`), so a broken board file or a firmware that no longer compiles fails CI.
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { test } from "node:test"
import { feedlineC3Board, feedlineS3Board } from "../../../src/foundation/config.ts"
import { checkBoard, CODE_WINDOW_BYTES, codeWindowProblem, MIN_FREE_SHARE } from "../../../devs/tools/build-boards.ts"
import { compiledEntry } from "../../../devs/server/compiled.ts"

const c3json = () => JSON.parse(readFileSync("boards/feedline_c3.board.json", "utf8"))

test("the shipped boards agree with the firmware's board table", () => {
    assert.deepEqual(checkBoard("feedline_c3", c3json(), feedlineC3Board()), [])
    assert.deepEqual(checkBoard("feedline_s3", JSON.parse(readFileSync("boards/feedline_s3.board.json", "utf8")), feedlineS3Board()), [])
})

test("a board file that disagrees is reported with a code and the fix", () => {
    const moved = c3json()
    moved.pins.RELAY = 4
    const p = checkBoard("feedline_c3", moved, feedlineC3Board())
    assert.equal(p.length, 1)
    assert.match(p[0], /^E_BOARD_PIN boards\/feedline_c3\.board\.json: pin RELAY is GPIO4, src\/foundation\/config\.ts feedline_c3 uses GPIO10$/)

    const s2 = c3json()
    s2.archId = "esp32s2"
    assert.match(checkBoard("feedline_c3", s2, feedlineC3Board())[0], /^E_BOARD_ARCH .*no TLS/)

    const noI2c = c3json()
    delete noI2c.i2c
    assert.match(checkBoard("feedline_c3", noI2c, feedlineC3Board())[0], /^E_BOARD_I2C .*sht30/)

    assert.match(checkBoard("other", c3json(), undefined)[0], /^E_BOARD_TABLE .*add its wiring/)
})

test("npm run build builds the firmware for every board offline, prints where its code ends, and keeps 40% of the code window free", { timeout: 120_000 }, () => {
    const r = spawnSync(process.execPath, [compiledEntry("devs/tools/build-boards.ts")], { encoding: "utf8" })
    assert.equal(r.status, 0, r.stdout + r.stderr) // exit 1 (E_CODE_WINDOW) when a build eats the headroom
    const limit = Math.floor(CODE_WINDOW_BYTES * (1 - MIN_FREE_SHARE))
    for (const id of ["sim", "feedline_c3", "feedline_s3"]) {
        const m = new RegExp(`^${id}\\s+\\S+\\s+\\d+ B\\s+ok\\s+\\S+ s\\s+(\\d+) B\\s+[\\d.]+%`, "m").exec(r.stdout)
        assert.ok(m, `no row for ${id}:\n${r.stdout}`)
        assert.ok(Number(m[1]) <= limit, `${id}: code ends at ${m[1]}, above ${limit}`)
    }
    console.log(r.stdout.trim())
})

test("a build that leaves less than 40% of the 64 KiB code window free is an E_CODE_WINDOW problem", () => {
    assert.equal(codeWindowProblem("feedline_c3", 39321), undefined)
    assert.match(codeWindowProblem("feedline_c3", 39322) ?? "", /^E_CODE_WINDOW feedline_c3: code ends at byte 39322 of the 65536-byte window \(39\.9% free\); keep it at or below 39321/)
    assert.match(codeWindowProblem("sim", 43088) ?? "", /34\.2% free/) // where the code ended before issue 13
})
