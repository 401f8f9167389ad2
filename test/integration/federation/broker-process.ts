// Runs `choria-edge broker` as its own process for the integration tests, as the CLI would.
import { runBroker } from "../../../functions/broker.ts";

process.exitCode = await runBroker(process.argv.slice(2));
