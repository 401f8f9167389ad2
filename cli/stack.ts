import { dirname, isAbsolute, relative } from "node:path";
import type { HaEndpoints, RunningStack } from "../infra/stack.ts";
import { stateDir } from "../lib/config/mod.ts";
import { serviceArgs } from "./args.ts";

const HELP = `usage: choria-edge stack [--topology single|ha] [--nodes N] [--brokers N] [--cluster NAME] [--<service>-port P ...]

Runs the whole local stack on 127.0.0.1 until Ctrl-C: a federation and a member-collective nats-server,
federation broker workers, simulated member nodes, an async result collector and the gateway, which
serves the demo webhook trigger file $CHORIA_EDGE_HOME/triggers.yaml. State and logs live in
$CHORIA_EDGE_HOME (default ./.choria-edge).

Each service prefers a port; a busy one is replaced by a free one. Where everything listens is written
to $CHORIA_EDGE_HOME/stack.json while the stack runs, and the other commands (req, trace, observe,
data, hook) take their defaults from it.

  --topology single     one federation and one member-collective nats-server (the default)
  --topology ha         the production-shaped topology (infra/topology.ts), made once in
                        $CHORIA_EDGE_HOME/topology: 3 federation servers (JetStream, R3 buckets) and 3
                        member-collective servers on free ports, TLS with its own CA, an nkey user with
                        allow-lists per role, 2 brokers; the NATS port flags and --brokers do not apply
  --federation-port P   federation NATS (default 4222)
  --websocket-port P    federation NATS websocket (default 4223)
  --collective-port P   member-collective NATS (default 4322)
  --metrics-port P      the first broker's metrics; the next brokers take the ports after it (default 9101)
  --gateway-port P      the gateway's HTTP (default 8080)

Needs nats-server 2.9 or newer: on the PATH, in NATS_SERVER_BIN, or built by 'bash infra/peers.sh'.`;

const PORTS = {
  "federation-port": 4222,
  "websocket-port": 4223,
  "collective-port": 4322,
  "metrics-port": 9101,
  "gateway-port": 8080,
} as const;

const OPTIONS = [
  { flag: "topology", kind: "string", default: "single" },
  { flag: "nodes", kind: "string", default: "300" },
  { flag: "brokers", kind: "string", default: "2" },
  { flag: "cluster", kind: "string", default: "dc1" },
  ...Object.keys(PORTS).map((flag) => ({ flag, kind: "string" }) as const),
] as const;

export async function runStack(argv: string[]): Promise<number> {
  const values = serviceArgs(HELP, OPTIONS, argv);
  if (values === undefined) return 0;
  if (values.topology !== "single" && values.topology !== "ha")
    throw new Error(`--topology takes single or ha, not ${values.topology}`);
  const port = (flag: keyof typeof PORTS): number => {
    const text = values[flag];
    if (text === undefined) return PORTS[flag];
    const number = Number(text);
    if (!Number.isInteger(number) || number < 1 || number > 65535)
      throw new Error(`--${flag} takes a port number, not ${text}`);
    return number;
  };
  const ports = {
    federation: port("federation-port"),
    federationWs: port("websocket-port"),
    collective: port("collective-port"),
    brokerMetrics: port("metrics-port"),
    gateway: port("gateway-port"),
  };
  // Imported once the arguments are read: `stack --help` need not load the stack's services.
  const [{ MissingPrerequisite }, { startStack }, { startHaStack }] = await Promise.all([
    import("../infra/prerequisites.ts"),
    import("../infra/stack.ts"),
    import("../infra/stack-ha.ts"),
  ]);
  const start = values.topology === "ha" ? startHaStack : startStack;
  // Listening before the stack starts, so that a Ctrl-C during start-up still stops it in order.
  const stopped = stopSignal();
  let stack: RunningStack;
  try {
    stack = await start({
      stateDir: stateDir(),
      nodes: Number(values.nodes),
      brokers: Number(values.brokers),
      cluster: values.cluster,
      ports,
    });
  } catch (err) {
    if (!(err instanceof MissingPrerequisite)) throw err;
    console.error(`\n${err.message}`);
    return 1;
  }
  console.log(await banner(stack, Number(values.nodes)));
  const reason = await Promise.race([stopped, stack.failed]);
  console.log(`\nstopping (${reason})…`);
  await stack.stop();
  return reason === "interrupted" || reason === "terminated" ? 0 : 1;
}

/** A path as the reader types it: relative to here when it is below here, else absolute. */
function shown(path: string): string {
  const below = relative(process.cwd(), path);
  return below === "" || below.startsWith("..") || isAbsolute(below) ? path : below;
}

/** Every command with this run's real ports and files, so that each works pasted into any terminal. */
async function banner(stack: RunningStack, nodes: number): Promise<string> {
  const [{ signedCurl }, { DEMO_TRIGGER }] = await Promise.all([
    import("../infra/demo-caller.ts"),
    import("../infra/demo-triggers.ts"),
  ]);
  const example = {
    agent: "rpcutil",
    action: "ping",
    cluster: stack.cluster,
    filter: { fact: [{ fact: "role", operator: "==", value: "web" }] },
  };
  const width = Math.max(4, String(nodes - 1).length);
  const node = `node${String(Math.min(42, nodes - 1)).padStart(width, "0")}.${stack.collectiveName}.example.net`;
  const gateway = stack.gatewayUrl;
  const fed = stack.federation.url;
  const callerKey = shown(stack.caller.keyPath);
  return `
Ready. Ctrl-C stops everything.

Where it listens is in ${shown(stack.stackFile)}. The commands below take their defaults from it, so
their flags may be left out (from another folder, set CHORIA_EDGE_HOME=${dirname(stack.stackFile)}).

Call it with the signing client:

  npx choria-edge req --gateway ${gateway} --key ${callerKey} \\
    --cluster ${stack.cluster} --filter-fact role=web rpcutil ping
  npx choria-edge req --gateway ${gateway} --key ${callerKey} \\
    --cluster ${stack.cluster} --identity ${node} rpcutil inventory

or with curl; this request is signed now, so it works once and within 5 minutes:

${await signedCurl(stack.caller, gateway, example)}

${stack.ha ? haNatsClients(stack.ha, stack, node) : natsClients(stack, node)}
${[...stack.brokerMetrics, stack.gatewayMetrics, stack.collectorMetrics].map((url) => `  curl -s ${url}/metrics`).join("\n")}

Webhooks: ${shown(stack.triggers.triggersPath)} has a trigger "${DEMO_TRIGGER}": a GitHub push to main
runs demo#echo on the web nodes under the lock "deploy". Send it a push signed with the demo secret;
--wait reads the job with the demo caller key until it ends:

  npx choria-edge hook send ${DEMO_TRIGGER} --url ${gateway} \\
    --secret-file ${shown(stack.triggers.secretPath)} --key ${callerKey} --wait
${stack.ha ? "" : `  npx choria-edge data get deploy/last-sha --server ${fed}\n  npx choria-edge data lock deploy --server ${fed}\n`}`;
}

function natsClients(stack: RunningStack, node: string): string {
  const fed = stack.federation.url;
  return `Follow one round trip hop by hop, and watch the brokers:

  npx choria-edge trace ${node} --server ${fed} --cluster ${stack.cluster} \\
    --cert ${shown(stack.pki.client.certPath)} --key ${shown(stack.pki.client.keyPath)}
  npx choria-edge observe --server ${fed} --cluster ${stack.cluster}`;
}

/** The HA servers ask for a client certificate and a role's nkey; the commands take the gateway role's. */
function haNatsClients(ha: HaEndpoints, stack: RunningStack, node: string): string {
  return `The NATS servers accept TLS clients with a certificate from ${shown(ha.caFile)} and a role's nkey:

  federation        ${ha.federationUrls.join(",")}
  member collective ${ha.collectiveUrls.join(",")}
  gateway role      --tls-ca ${shown(ha.caFile)} --tls-cert ${shown(ha.gateway.certFile)} \\
                    --tls-key ${shown(ha.gateway.keyFile)}, nkey seed in ${shown(ha.gateway.seedFile)},
                    inbox prefix ${ha.gateway.inboxPrefix}

trace, observe and data log in as the gateway role by default (their --tls-* and --nkey-seed flags
choose another):

  npx choria-edge trace ${node} --cluster ${stack.cluster}
  npx choria-edge observe --cluster ${stack.cluster}
  npx choria-edge data get deploy/last-sha

The metrics:`;
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
