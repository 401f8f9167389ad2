#!/usr/bin/env node
// choria-edge command line: each command lives in its own module and is loaded only when asked for,
// so `choria-edge observe` does not pay for the gateway's dependencies.

type Command = { summary: string; load: () => Promise<(argv: string[]) => Promise<number>> };

const commands: Record<string, Command> = {
  stack: {
    summary: "run the local stack: NATS servers, brokers, simulated nodes, gateway (npm start)",
    load: async () => (await import("./stack.ts")).runStack,
  },
  gateway: {
    summary: "serve the edge gateway over HTTP on Node (signed HTTPS in, federated Choria RPC out)",
    load: async () => (await import("./node.ts")).runGateway,
  },
  req: {
    summary: "sign an RPC request, send it to a gateway and show the replies as they arrive",
    load: async () => (await import("./req.ts")).runReq,
  },
  hook: {
    summary: "sign a webhook delivery as GitHub, Slack, Stripe or Standard Webhooks would and send it",
    load: async () => (await import("./hook.ts")).runHook,
  },
  data: {
    summary: "read and write the trigger data store, and see who holds a lock",
    load: async () => (await import("./data.ts")).runData,
  },
  broker: {
    summary: "run a federation broker worker (stateless; start as many as you like)",
    load: async () => (await import("./broker.ts")).runBroker,
  },
  observe: {
    summary: "live view of a federation broker cluster: totals and each instance's share",
    load: async () => (await import("./observe.ts")).runObserve,
  },
  trace: {
    summary: "send one round trip to a node and print its route hop by hop",
    load: async () => (await import("./trace.ts")).runTrace,
  },
  collector: {
    summary: "run an async result collector (stores replies of async jobs in JetStream KV)",
    load: async () => (await import("./collector.ts")).runCollector,
  },
  simulate: {
    summary: "host many simulated Choria member nodes in one process",
    load: async () => (await import("./simulate.ts")).runSimulate,
  },
  keys: {
    summary: "create the demo CA, gateway, client and node certificates",
    load: async () => (await import("./keys.ts")).runKeys,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: choria-edge <command> [options]\n\ncommands:\n${lines.join("\n")}\n\nRun 'choria-edge <command> --help' for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    console.error(`choria-edge: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const run = await command.load();
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`choria-edge: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
