// The running local stack as the CLI commands see it: their defaults come from its stack.json, after
// their flags and environment variables and before the built-in defaults.
import { readStackFile, type StackFile } from "../infra/stack-file.ts";
import { stateDir } from "../lib/config/mod.ts";

/**
 * The endpoints of the stack running from `$CHORIA_EDGE_HOME`, or undefined when none runs. A file left
 * by a stack that is gone is ignored, and said so on `warn`, so that nobody wonders where a default came from.
 */
export function localStack(warn: { write(text: string): unknown }): StackFile | undefined {
  const found = readStackFile(stateDir());
  if (found.state === "stale") warn.write(`choria-edge: ignoring ${found.path}: ${found.reason}\n`);
  return found.state === "running" ? found.stack : undefined;
}

/**
 * The broker cluster and federation NATS servers that observe and trace talk to: the flag, else the
 * broker's environment variable, else the local stack's, else the built-in default.
 */
export function federationTarget(
  given: { cluster?: string | undefined; server?: string | undefined },
  stack: StackFile | undefined,
): { cluster: string; server: string } {
  return {
    cluster: given.cluster ?? process.env.CHORIA_EDGE_BROKER_CLUSTER ?? stack?.cluster ?? "mcollective",
    server:
      given.server ??
      process.env.CHORIA_EDGE_BROKER_FEDERATION_SERVERS ??
      process.env.CHORIA_EDGE_BROKER_SERVERS ??
      stack?.federation.url ??
      "nats://127.0.0.1:4222",
  };
}
