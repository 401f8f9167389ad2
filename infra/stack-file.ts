// $CHORIA_EDGE_HOME/stack.json: where the running local stack listens and which files it made. The stack
// writes it once every service is ready and removes it when it stops; the CLI commands take their
// defaults from it (flags > environment > stack.json > built-in defaults), so that a stack moved off a
// busy port is still the one they reach.
import { readFileSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as z from "zod";

const StackFileSchema = z.object({
  version: z.literal(1),
  /** The `choria-edge stack` process; a file whose process is gone is stale. */
  pid: z.number().int().positive(),
  started_at: z.string(),
  home: z.string(),
  cluster: z.string(),
  collective: z.string(),
  federation: z.object({ url: z.string(), websocket_url: z.string() }),
  collective_url: z.string(),
  gateway_url: z.string(),
  broker_metrics: z.array(z.string()),
  /** Base URLs of the gateway's and the collector's /metrics listeners. */
  gateway_metrics: z.string(),
  collector_metrics: z.string(),
  keys: z.object({
    /** The demo HTTP caller key (`req`, `hook send --wait`). */
    caller: z.string(),
    caller_id: z.string(),
    /** The demo PKI's RPC client certificate and key (`trace`). */
    client_cert: z.string(),
    client_key: z.string(),
    ca: z.string(),
    /** The demo GitHub webhook secret (`hook send`). */
    webhook_secret: z.string(),
  }),
  triggers: z.string(),
  logs: z.string(),
  /**
   * `stack --topology ha` only: the TLS CA every server presents, every server's URL, and the gateway
   * role's credentials (servers refuse a client without a role's nkey and a client certificate).
   */
  topology: z
    .object({
      dir: z.string(),
      ca: z.string(),
      federation_urls: z.array(z.string()),
      collective_urls: z.array(z.string()),
      gateway: z.object({
        nkey_seed_file: z.string(),
        tls_cert: z.string(),
        tls_key: z.string(),
        inbox_prefix: z.string(),
      }),
    })
    .optional(),
});

export type StackFile = z.infer<typeof StackFileSchema>;

function stackFilePath(stateDir: string): string {
  return join(stateDir, "stack.json");
}

export async function writeStackFile(stateDir: string, stack: StackFile): Promise<string> {
  const path = stackFilePath(stateDir);
  // Written whole, then renamed: a command never reads half a file.
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(stack, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, path);
  return path;
}

/** Removes the file if this process wrote it (a second stack refused to start must not remove the first's). */
export async function removeStackFile(stateDir: string, pid = process.pid): Promise<void> {
  const found = readStackFile(stateDir);
  if (found.state === "running" && found.stack.pid !== pid) return;
  await rm(stackFilePath(stateDir), { force: true });
}

export type StackFileState =
  | { state: "none"; path: string }
  | { state: "running"; path: string; stack: StackFile }
  | { state: "stale"; path: string; reason: string };

/** Reads the file without throwing: absent, a running stack's endpoints, or stale (and why). */
export function readStackFile(stateDir: string): StackFileState {
  const path = stackFilePath(stateDir);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { state: "none", path };
    return { state: "stale", path, reason: (err as Error).message };
  }
  let parsed: ReturnType<typeof StackFileSchema.safeParse>;
  try {
    parsed = StackFileSchema.safeParse(JSON.parse(text));
  } catch {
    return { state: "stale", path, reason: "it is not JSON" };
  }
  if (!parsed.success) return { state: "stale", path, reason: "it is not a stack file this version reads" };
  if (!processAlive(parsed.data.pid))
    return {
      state: "stale",
      path,
      reason: `the stack that wrote it (pid ${parsed.data.pid}) is not running`,
    };
  return { state: "running", path, stack: parsed.data };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
