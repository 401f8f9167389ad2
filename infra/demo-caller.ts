// The local stack's demo HTTP caller: an ed25519 key the gateway trusts, with a policy that allows the
// demo agents on the demo cluster only. Made once, then reused, like the demo PKI.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type GatewayKeyConfig,
  generateHttpKey,
  type KeyFile,
  type Policy,
  signHttpRequest,
  signingKeyFromText,
} from "../lib/security/http/mod.ts";

export interface DemoCaller {
  keyPath: string;
  keysPath: string;
  keyId: string;
}

export function demoCallerKeyPath(stateDir: string): string {
  return join(stateDir, "demo-caller.json");
}

export async function ensureDemoCaller(
  stateDir: string,
  cluster: string,
  collective: string,
): Promise<DemoCaller> {
  const keyPath = demoCallerKeyPath(stateDir);
  const keysPath = join(stateDir, "gateway-keys.json");
  // It may read the jobs that webhook triggers start in the demo cluster, not only its own.
  const policy: Policy = {
    clusters: [cluster],
    collectives: [collective],
    agents: ["rpcutil", "demo"],
    actions: ["rpcutil#*", "demo#*"],
    maxNodes: 1000,
    maxTimeoutSeconds: 60,
    readJobs: "allowed",
  };
  const existing = await readFile(keyPath, "utf8").catch(() => undefined);
  const keys = await readFile(keysPath, "utf8").catch(() => undefined);
  if (existing !== undefined && keys !== undefined) {
    // The key is kept; its policy is the stack's, brought up to date on every start. Other keys an
    // operator added to the file are left as they are.
    const keyId = (JSON.parse(existing) as KeyFile).id;
    const document = JSON.parse(keys) as { keys: GatewayKeyConfig[] };
    const updated = document.keys.map((entry) => (entry.id === keyId ? { ...entry, policy } : entry));
    await writeFile(keysPath, `${JSON.stringify({ ...document, keys: updated }, null, 2)}\n`, {
      mode: 0o600,
    });
    return { keyPath, keysPath, keyId };
  }
  const generated = await generateHttpKey({ id: "demo", caller: "demo", scheme: "ed25519", policy });
  await writeFile(keyPath, `${JSON.stringify(generated.keyFile, null, 2)}\n`, { mode: 0o600 });
  await writeFile(keysPath, `${JSON.stringify({ keys: [generated.config] }, null, 2)}\n`, { mode: 0o600 });
  return { keyPath, keysPath, keyId: generated.keyFile.id };
}

/**
 * A curl command line carrying a freshly signed request: it works once (its nonce is then spent) and only
 * within the gateway's freshness window, which is what a replay-proof signature means.
 */
export async function signedCurl(caller: DemoCaller, gatewayUrl: string, body: unknown): Promise<string> {
  const key = await signingKeyFromText(await readFile(caller.keyPath, "utf8"));
  if (!key.ok) throw new Error(`${caller.keyPath}: ${key.error}`);
  const url = `${gatewayUrl}/v1/rpc`;
  const text = JSON.stringify(body);
  const headers = await signHttpRequest({
    method: "POST",
    url,
    headers: { "content-type": "application/json" },
    body: text,
    key: key.key,
  });
  const lines = [`curl -sS ${url}`];
  for (const [name, value] of headers) lines.push(`  -H ${shellQuote(`${name}: ${value}`)}`);
  lines.push(`  --data-raw ${shellQuote(text)}`);
  return lines.join(" \\\n");
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}
