// The local stack's demo webhook trigger: a GitHub push to main runs demo#echo on the web nodes, under a
// `deploy` lock, and records the pushed sha. Its file and secret are made once, like the demo caller key,
// so a GitHub webhook pointed at the stack keeps working across restarts.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const DEMO_TRIGGER = "github-push";
/** The gateway reads the demo secret from this variable, which the stack sets on its child process only. */
export const DEMO_SECRET_ENV = "CHORIA_EDGE_DEMO_GITHUB_SECRET";
const SECRET_FILE = "demo-github-secret";

export interface DemoTriggers {
  triggersPath: string;
  secretPath: string;
  /** What the gateway process needs in its environment to load the trigger file. */
  env: Record<string, string>;
}

/** Where the local stack keeps the demo GitHub secret, for `choria-edge hook` to sign with. */
export function demoSecretPath(stateDir: string): string {
  return join(stateDir, SECRET_FILE);
}

export async function ensureDemoTriggers(
  stateDir: string,
  cluster: string,
  collective: string,
): Promise<DemoTriggers> {
  const triggersPath = join(stateDir, "triggers.yaml");
  const secretPath = demoSecretPath(stateDir);
  let secret = await readSecretFile(secretPath).catch(() => undefined);
  if (secret === undefined) {
    secret = randomSecret();
    await writeFile(secretPath, `${secret}\n`, { mode: 0o600 });
  }
  // An edited trigger file is the operator's: only a missing one is written.
  await writeFile(triggersPath, demoTriggerFile(cluster, collective), { flag: "wx" }).catch(
    (err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    },
  );
  return { triggersPath, secretPath, env: { [DEMO_SECRET_ENV]: secret } };
}

/** A secret file's text without the trailing line break an editor or `echo` adds. */
export async function readSecretFile(path: string): Promise<string> {
  const secret = (await readFile(path, "utf8")).replace(/\r?\n$/, "");
  if (secret === "") throw new Error(`${path} is empty`);
  return secret;
}

/** 32 random bytes, base64url without padding: what GitHub's "Secret" field takes as-is. */
export function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

export function demoTriggerFile(cluster: string, collective: string): string {
  return `# The local stack's demo webhook trigger, made on its first run. Edit it freely; delete it to get this
# one back. The format is described in lib/triggers/README.md.
#
# Send a signed push to it:   npx choria-edge hook send ${DEMO_TRIGGER} --wait
triggers:
  - name: ${DEMO_TRIGGER}
    verify:
      scheme: github
      # The stack puts the secret from ${SECRET_FILE} in this variable for the gateway alone.
      secrets_env: [${DEMO_SECRET_ENV}]
    policy:
      clusters: [${cluster}]
      collectives: [${collective}]
      agents: [demo]
      actions: ["demo#echo"]
      requireFilter: true
      maxNodes: 200
      maxTimeoutSeconds: 30
    when:
      - header: x-github-event
        equals: push
      - path: ref
        equals: refs/heads/main
      # A deleted branch is a push too, with an all-zero sha.
      - not: { path: deleted, equals: true }
    inputs:
      sha: { from: payload.after, pattern: "^[0-9a-f]{40}$" }
      repo:
        from: payload.repository.full_name
        pattern: "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
        max_length: 140
        shellsafe: true
    request:
      cluster: ${cluster}
      collective: ${collective}
      agent: demo
      action: echo
      data: { sha: "\${inputs.sha}", repo: "\${inputs.repo}" }
      filter: { fact: [{ fact: role, operator: "==", value: web }] }
      timeout: 10
    # One deployment at a time: a second push waits up to lock_timeout for the first to end.
    locks: [deploy]
    lock_timeout: 5
    on_complete:
      - put: deploy/last-sha
        value: "\${inputs.sha}"
        when_state: [complete]
`;
}
