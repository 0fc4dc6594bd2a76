// The page's units (devs/dashboard/units.js, plain ESM: it runs in Node as in the browser).
import assert from "node:assert/strict"
import { test } from "node:test"

// the page's own JavaScript has no types: imported by its URL, typed here
const { unitOf } = (await import(new URL("../../../devs/dashboard/units.js", import.meta.url).href)) as { unitOf: (ds: { id: string; unit?: unknown }) => string }

test("a datastream's own unit wins; else the firmware's known ids (and their .state); else none", () => {
    assert.equal(unitOf({ id: "temp", unit: "K" }), "K")
    assert.equal(unitOf({ id: "temp", unit: { symbol: "°F", label: "Fahrenheit" } }), "°F")
    assert.equal(unitOf({ id: "temp" }), "°C")
    assert.equal(unitOf({ id: "setpoint.state" }), "°C")
    assert.equal(unitOf({ id: "led" }), "")
})

test("ids that name Object's own members (valid datastream ids) have no unit (was: \"function Object() { [native code] }\", \"[object Object]\")", () => {
    for (const id of ["constructor", "toString", "valueOf", "hasOwnProperty", "__proto__", "constructor.state", "isPrototypeOf"]) assert.equal(unitOf({ id }), "", id)
})
