// A Node gateway as its own process for the HTTP chaos scenario: `gateway-process.ts <nats url>` with the
// keys document in CHAOS_GATEWAY_KEYS; prints "ready <url>" once it listens and stops on SIGTERM.
import { startGateway } from "../../functions/node.ts";
import { gatewaySettings } from "../integration/gateway/support.ts";

const natsUrl = process.argv[2];
const keys = process.env.CHAOS_GATEWAY_KEYS;
if (natsUrl === undefined || keys === undefined) throw new Error("usage: gateway-process.ts <nats url>");
// Audit lines and logs for 10,000 bad requests would only slow the run down.
const running = await startGateway(await gatewaySettings(natsUrl, keys), { log: () => {}, audit: () => {} });
process.stdout.write(`ready ${running.url}\n`);
process.once("SIGTERM", () => void running.close().then(() => process.exit(0)));
