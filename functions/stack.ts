import { relative } from "node:path";
import { parseArgs } from "node:util";
import { signedCurl } from "../infra/demo-caller.ts";
import { DEMO_TRIGGER } from "../infra/demo-triggers.ts";
import { startStack } from "../infra/stack.ts";
import { stateDir } from "./paths.ts";

const HELP = `usage: choria-edge stack [--nodes N] [--brokers N] [--cluster NAME]

Runs the whole local stack on 127.0.0.1 until Ctrl-C: a federation and a member-collective nats-server,
federation broker workers, simulated member nodes, an async result collector and the gateway, which
serves the demo webhook trigger file $CHORIA_EDGE_HOME/triggers.yaml. State and logs live in
$CHORIA_EDGE_HOME (default ./.choria-edge).`;

export async function runStack(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: "string", default: "300" },
      brokers: { type: "string", default: "2" },
      cluster: { type: "string", default: "dc1" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  // Listening before the stack starts, so that a Ctrl-C during start-up still stops it in order.
  const stopped = stopSignal();
  const stack = await startStack({
    stateDir: stateDir(),
    nodes: Number(values.nodes),
    brokers: Number(values.brokers),
    cluster: values.cluster,
    ports: { federation: 4222, federationWs: 4223, collective: 4322, brokerMetrics: 9101, gateway: 8080 },
  });
  const example = {
    agent: "rpcutil",
    action: "ping",
    cluster: stack.cluster,
    filter: { fact: [{ fact: "role", operator: "==", value: "web" }] },
  };
  console.log(`
Ready. Ctrl-C stops everything.

Call it from another terminal with the signing client:

  npx choria-edge req --gateway ${stack.gatewayUrl} --key ${relative(process.cwd(), stack.caller.keyPath)} \\
    --cluster ${stack.cluster} --filter-fact role=web rpcutil ping

or with curl; this request is signed now, so it works once and within 5 minutes:

${await signedCurl(stack.caller, stack.gatewayUrl, example)}

Webhooks: ${relative(process.cwd(), stack.triggers.triggersPath)} has a trigger "${DEMO_TRIGGER}": a GitHub push to main
runs demo#echo on the web nodes under the lock "deploy". Send it a push signed with the demo secret
(${relative(process.cwd(), stack.triggers.secretPath)}); --wait reads the job with the demo caller key until it ends:

  npx choria-edge hook send ${DEMO_TRIGGER} --url ${stack.gatewayUrl} --wait
`);
  const reason = await Promise.race([stopped, stack.failed]);
  console.log(`\nstopping (${reason})…`);
  await stack.stop();
  return reason === "interrupted" || reason === "terminated" ? 0 : 1;
}

/**
 * Resolves on the first SIGINT or SIGTERM. Ctrl-C reaches this process from the terminal and again as
 * relayed by npm or tsx, so a repeat within a second is the same request; a later one means "stop now".
 */
function stopSignal(): Promise<string> {
  let first = 0;
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      const now = Date.now();
      if (first === 0) {
        first = now;
        resolve(signal === "SIGINT" ? "interrupted" : "terminated");
      } else if (now - first > 1000) {
        console.error("stopping at once");
        process.exit(1);
      }
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
