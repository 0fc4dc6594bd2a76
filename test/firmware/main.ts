// Entry for the firmware test suites: `devs run test/firmware/main.ts --test --test-self-exit`.
// One program's functions must stay under 64 KB of bytecode (verifier error 1051): the link's suites
// run from main-net.ts; npm test runs every test/firmware/main*.ts.
import "./protocol.test"
import "./client-core.test"
import "./sensors.test"
import "./sensors-board.test"
import "./bme680.test"
import "./chips.test"
import "./actuators.test"
import "./flash.test"
import "./outbox-store.test"
