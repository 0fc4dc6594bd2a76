// Entry for every firmware test suite: `devs run test/firmware/main.ts --test --test-self-exit`.
import "./protocol.test"
import "./netparts.test"
import "./link.test"
import "./subs.test"
import "./sensors.test"
import "./sensors-board.test"
import "./actuators.test"
