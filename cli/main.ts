#!/usr/bin/env node
// choria-edge command line: each command lives in its own module and is loaded only when asked for,
// so `choria-edge observe` does not pay for the gateway's dependencies.
import { packageVersion } from "../lib/config/mod.ts";

type Command = { summary: string; load: () => Promise<(argv: string[]) => Promise<number>> };

const commands: Record<string, Command> = {
  stack: {
    summary: "run the local stack: NATS servers, brokers, simulated nodes, gateway (npm start)",
    load: async () => (await import("./stack.ts")).runStack,
  },
  gateway: {
    summary: "serve the edge gateway over HTTP on Node (signed HTTPS in, federated Choria RPC out)",
    load: async () => (await import("./gateway.ts")).runGateway,
  },
  req: {
    summary: "sign an RPC request, send it to a gateway and show the replies as they arrive",
    load: async () => (await import("./req.ts")).runReq,
  },
  jobs: {
    summary: "list, show, follow and cancel the gateway's async jobs",
    load: async () => (await import("./jobs.ts")).runJobs,
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
  deploy: {
    summary: "build the Lambda bundle and create or update the function and its streaming Function URL",
    load: async () => (await import("./deploy.ts")).runDeploy,
  },
  doctor: {
    summary: "check a gateway configuration (node, lambda or workers) before deploying it",
    load: async () => (await import("./doctor.ts")).runDoctor,
  },
  keys: {
    summary: "create the demo CA, gateway, client and node certificates",
    load: async () => (await import("./keys.ts")).runKeys,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: choria-edge <command> [options]\n\ncommands:\n${lines.join("\n")}\n\nRun 'choria-edge <command> --help' for a command's options, 'choria-edge --version' for the version.`;
}

/** Edits (insert, delete, substitute, swap two neighbours) that turn a into b. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  return d[a.length]![b.length]!;
}

/** The command a mistyped name most likely meant: a prefix of one, or a few edits away. */
function nearestCommand(name: string, known: readonly string[] = Object.keys(commands)): string | undefined {
  const lower = name.toLowerCase();
  const prefixed = known.filter((c) => c.startsWith(lower));
  if (lower.length >= 2 && prefixed.length === 1) return prefixed[0];
  let best: { command: string; edits: number } | undefined;
  for (const command of known) {
    const edits = distance(lower, command);
    if (best === undefined || edits < best.edits) best = { command, edits };
  }
  // At most a third of the word wrong (and at least one edit allowed), else it is no suggestion.
  return best !== undefined && best.edits <= Math.max(1, Math.floor(best.command.length / 3))
    ? best.command
    : undefined;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    console.log(packageVersion());
    return 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) {
    const near = nearestCommand(name);
    console.error(
      near === undefined
        ? `choria-edge: unknown command '${name}'\n\n${usage()}`
        : `choria-edge: unknown command '${name}'; did you mean '${near}'?\n\nRun 'choria-edge --help' for every command.`,
    );
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
