// Entry point (also `feedline proxy`): node dist/devs/faultproxy/cli.js --listen 127.0.0.1:7444 --target 127.0.0.1:7443 [--schedule f.json]
import { runProxyCli } from "./command.ts"

process.exitCode = await runProxyCli(process.argv.slice(2))
