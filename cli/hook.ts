// `choria-edge hook send`: a webhook delivery signed the way its sender signs it (GitHub, Standard
// Webhooks, Slack, Stripe), POSTed to a gateway's /v1/hooks/<trigger> or printed as a curl command. It
// exists to try triggers without the SaaS side: the gateway cannot tell its deliveries from the real ones.
import { demoCallerKeyPath } from "../infra/demo-caller.ts";
import { demoSecretPath, readSecretFile } from "../infra/demo-triggers.ts";
import type { StackFile } from "../infra/stack-file.ts";
import {
  FileProblem,
  type MissingFileHint,
  type OptionValues,
  readNamedBytes,
  readNamedFile,
  stateDir,
} from "../lib/config/mod.ts";
import { signHttpRequest, signingKeyFromText } from "../lib/security/http/mod.ts";
import {
  isWebhookScheme,
  signGithub,
  signSlack,
  signStandardV1,
  signStripe,
  WEBHOOK_SCHEMES,
  type WebhookScheme,
} from "../lib/security/webhooks/mod.ts";
import { triggerFileJson } from "../lib/triggers/node.ts";
import { commandArgs } from "./args.ts";
import { localStack } from "./local-stack.ts";

const DEFAULT_URL = "http://127.0.0.1:8080";
const WAIT_LIMIT_MS = 120_000;
const POLL_MS = 500;

const USAGE = `usage: choria-edge hook send <trigger> [options]
       choria-edge hook compile <trigger file>

compile: checks a trigger file (YAML or JSON) and prints it as one line of JSON, the form the Workers
gateway takes in CHORIA_EDGE_GATEWAY_TRIGGERS_TEXT (it carries no YAML parser). Exits 1 naming each
error's line and column.

send: 
Signs a webhook delivery exactly as its sender would (signature, delivery id and timestamp headers)
and POSTs it to <url>/v1/hooks/<trigger>. Prints the HTTP status and the gateway's answer; exits 0 on
a 2xx answer (with --wait: when the job ends complete), 1 otherwise, 2 on a usage error.

  --url <base>           gateway base URL (env CHORIA_EDGE_HOOK_URL; default: the local stack's from
                         $CHORIA_EDGE_HOME/stack.json while it runs, else ${DEFAULT_URL})
  --scheme <s>           ${WEBHOOK_SCHEMES.join(" | ")} (default github)
  --secret-env <NAME>    the signing secret is in this environment variable
  --secret-file <file>   the signing secret is this file's text (a final line break is dropped)
                         Neither: the local stack's demo GitHub secret ($CHORIA_EDGE_HOME/demo-github-secret)
  --body <file>          the payload, sent byte for byte (needed for all but github)
  --content-type <t>     of --body (default application/json)
  --delivery <id>        delivery id, github and standard-webhooks (default: a new one each time);
                         send one twice to see the gateway answer with the first delivery's job
                         (the made-up push is then the same too: its sha comes from the id)
  --event <name>         github: X-GitHub-Event (default push)

Without --body, a github delivery carries a made-up push, shaped by:
  --ref <ref>            default refs/heads/main
  --sha <40 hex>         the pushed commit, "after" (default: random, or derived from --delivery)
  --repo <owner/name>    repository.full_name (default acme/demo)

  --print-curl           print an equivalent curl command instead of sending (the signature is in it,
                         the secret is not; with a timestamped scheme it works for 5 minutes)
  --wait                 after a 202 with a job id, read the job until it ends (a signed GET
                         /v1/jobs/<id>) and print it
  --key <file>           caller key for --wait; it must be allowed to read the trigger's jobs
                         (default: the local stack's demo caller key)

Slack and Stripe put the delivery id and the event in the body, so --delivery and --event do not
apply to them; Standard Webhooks puts the event in the body too.`;

export interface HookIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** A delivery ready to send: the headers its sender would set, in that sender's spelling, and the body. */
export interface SignedDelivery {
  headers: [name: string, value: string][];
  body: Uint8Array<ArrayBuffer>;
}

export interface DeliveryOptions {
  scheme: WebhookScheme;
  secret: string;
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  /** github and standard-webhooks carry it in a header; Slack and Stripe in the body. */
  deliveryId?: string;
  /** github only: X-GitHub-Event. */
  event?: string;
  now: Date;
}

export async function signDelivery(options: DeliveryOptions): Promise<SignedDelivery> {
  const { body, secret } = options;
  const timestamp = Math.floor(options.now.getTime() / 1000);
  const headers: [string, string][] = [["Content-Type", options.contentType]];
  switch (options.scheme) {
    case "github":
      headers.push(
        ["X-GitHub-Event", options.event ?? "push"],
        ["X-GitHub-Delivery", options.deliveryId ?? crypto.randomUUID()],
        ["X-Hub-Signature-256", await signGithub(secret, body)],
      );
      break;
    case "standard-webhooks": {
      const id = options.deliveryId ?? `msg_${crypto.randomUUID().replaceAll("-", "")}`;
      headers.push(
        ["webhook-id", id],
        ["webhook-timestamp", String(timestamp)],
        ["webhook-signature", await signStandardV1(secret, id, timestamp, body)],
      );
      break;
    }
    case "slack":
      headers.push(
        ["X-Slack-Request-Timestamp", String(timestamp)],
        ["X-Slack-Signature", await signSlack(secret, timestamp, body)],
      );
      break;
    case "stripe":
      headers.push(["Stripe-Signature", await signStripe(secret, timestamp, body)]);
      break;
  }
  return { headers, body };
}

/** The parts of a GitHub push event that triggers usually look at. */
export function demoPush(options: { ref: string; sha: string; repo: string }): Record<string, unknown> {
  const name = options.repo.split("/").at(-1) ?? options.repo;
  return {
    ref: options.ref,
    before: "0".repeat(40),
    after: options.sha,
    created: false,
    deleted: false,
    forced: false,
    repository: { name, full_name: options.repo },
    pusher: { name: "choria-edge" },
    head_commit: { id: options.sha, message: "sent by choria-edge hook" },
  };
}

/**
 * A curl command line sending this delivery. A body read from a file is referenced by its path
 * (`--data-binary @file`), so it goes byte for byte; a made-up one is inlined.
 */
export function curlCommand(url: string, delivery: SignedDelivery, bodyFile?: string): string {
  const lines = [`curl -sS ${shellQuote(url)}`];
  for (const [name, value] of delivery.headers) lines.push(`  -H ${shellQuote(`${name}: ${value}`)}`);
  lines.push(
    bodyFile === undefined
      ? `  --data-raw ${shellQuote(new TextDecoder().decode(delivery.body))}`
      : `  --data-binary ${shellQuote(`@${bodyFile}`)}`,
  );
  return lines.join(" \\\n");
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

const OPTIONS = [
  { flag: "url", kind: "string" },
  { flag: "scheme", kind: "string", default: "github" },
  { flag: "secret-env", kind: "string" },
  { flag: "secret-file", kind: "string" },
  { flag: "body", kind: "string" },
  { flag: "content-type", kind: "string", default: "application/json" },
  { flag: "delivery", kind: "string" },
  { flag: "event", kind: "string" },
  { flag: "ref", kind: "string", default: "refs/heads/main" },
  { flag: "sha", kind: "string" },
  { flag: "repo", kind: "string", default: "acme/demo" },
  { flag: "print-curl", kind: "bool" },
  { flag: "wait", kind: "bool" },
  { flag: "key", kind: "string" },
] as const;

type Values = OptionValues<typeof OPTIONS>;

class UsageError extends Error {}

/** Exit codes: 0 a 2xx answer (and with --wait, a job that ended complete), 1 otherwise, 2 usage. */
export async function runHook(
  argv: string[],
  io: HookIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const args = commandArgs("hook", USAGE, OPTIONS, argv, io);
  if (typeof args === "number") return args;
  const { values, positionals } = args;
  try {
    const [verb, target, ...extra] = positionals;
    if ((verb !== "send" && verb !== "compile") || target === undefined || extra.length > 0)
      throw new UsageError("expected: hook send <trigger>, or hook compile <trigger file>");
    return verb === "send" ? await send(target, values, io) : await compile(target, io);
  } catch (err) {
    if (err instanceof FileProblem) {
      io.stderr.write(`choria-edge hook: ${err.message}\n`);
      return 1;
    }
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`choria-edge hook: ${err.message}\n`);
    return 2;
  }
}

async function compile(file: string, io: HookIo): Promise<number> {
  const compiled = triggerFileJson(await readNamedFile(file, { what: "trigger file" }), { filename: file });
  if (!compiled.ok) {
    io.stderr.write(`${compiled.message}\n`);
    return 1;
  }
  io.stdout.write(`${compiled.json}\n`);
  return 0;
}

async function send(trigger: string, values: Values, io: HookIo): Promise<number> {
  const scheme = values.scheme;
  if (!isWebhookScheme(scheme))
    throw new UsageError(`--scheme must be one of ${WEBHOOK_SCHEMES.join(", ")}, not ${scheme}`);
  if (values.event !== undefined && scheme !== "github")
    throw new UsageError(`--event is for github; ${scheme} names the event in the body`);
  if (values.delivery !== undefined && (scheme === "slack" || scheme === "stripe"))
    throw new UsageError(`--delivery does not apply to ${scheme}, whose delivery id is in the body`);
  if (values.body === undefined && scheme !== "github")
    throw new UsageError(`${scheme} needs --body: the made-up payload is a GitHub push`);
  if (values.sha !== undefined && !/^[0-9a-f]{40}$/.test(values.sha))
    throw new UsageError("--sha is 40 lowercase hex digits");

  const stack = localStack(io.stderr);
  // A delivery id names one delivery: sent again, it must be the same body, or the gateway refuses it
  // (422) instead of answering with the first delivery's job. So its made-up sha comes from the id.
  const sha = values.sha ?? (values.delivery === undefined ? randomSha() : await shaOf(values.delivery));
  const body =
    values.body === undefined
      ? new TextEncoder().encode(JSON.stringify(demoPush({ ref: values.ref, sha, repo: values.repo })))
      : await readNamedBytes(values.body, { what: "body file (--body)" });
  const delivery = await signDelivery({
    scheme,
    secret: await secretOf(values, scheme, stack),
    body,
    contentType: values["content-type"],
    ...(values.delivery === undefined ? {} : { deliveryId: values.delivery }),
    ...(values.event === undefined ? {} : { event: values.event }),
    now: new Date(),
  });
  const base = (values.url ?? process.env.CHORIA_EDGE_HOOK_URL ?? stack?.gateway_url ?? DEFAULT_URL).replace(
    /\/+$/,
    "",
  );
  const url = `${base}/v1/hooks/${encodeURIComponent(trigger)}`;
  if (values["print-curl"]) {
    io.stdout.write(`${curlCommand(url, delivery, values.body)}\n`);
    return 0;
  }

  const response = await fetch(url, {
    method: "POST",
    headers: delivery.headers,
    body: delivery.body,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  io.stdout.write(`${response.status} ${response.statusText}\n${pretty(text)}\n`);
  if (!response.ok) return 1;
  if (!values.wait) return 0;
  const jobId = jobIdOf(response.headers.get("location"), text);
  if (jobId === undefined) {
    io.stderr.write("choria-edge hook: the answer names no job (skipped, or a custom respond body)\n");
    return 1;
  }
  const keyPath = values.key ?? stack?.keys.caller ?? demoCallerKeyPath(stateDir());
  const job = await waitForJob(base, jobId, keyPath, {
    what: "caller key for --wait",
    made: values.key === undefined ? "npm start makes the demo caller key" : undefined,
    instead: "--key",
  });
  io.stdout.write(`job ${jobId} ended ${String(job.state)}\n${JSON.stringify(job, null, 2)}\n`);
  return job.state === "complete" ? 0 : 1;
}

async function secretOf(
  values: Values,
  scheme: WebhookScheme,
  stack: StackFile | undefined,
): Promise<string> {
  const fromEnv = values["secret-env"];
  if (fromEnv !== undefined) {
    const secret = process.env[fromEnv];
    if (!secret) throw new UsageError(`environment variable ${fromEnv} is not set`);
    return secret;
  }
  const secretFile = values["secret-file"];
  if (secretFile !== undefined) {
    await readNamedFile(secretFile, { what: "secret file (--secret-file)" });
    return readSecretFile(secretFile);
  }
  if (scheme !== "github") throw new UsageError(`${scheme} needs --secret-env or --secret-file`);
  const demo = stack?.keys.webhook_secret ?? demoSecretPath(stateDir());
  return readSecretFile(demo).catch(() => {
    throw new UsageError(
      `no --secret-env or --secret-file, and no demo secret at ${demo} (npm start makes one)`,
    );
  });
}

/** Polls the job with signed reads until it is no longer running. */
async function waitForJob(
  base: string,
  jobId: string,
  keyPath: string,
  hint: MissingFileHint,
): Promise<Record<string, unknown>> {
  const key = await signingKeyFromText(await readNamedFile(keyPath, hint));
  if (!key.ok) throw new Error(`${keyPath}: ${key.error}`);
  const url = `${base}/v1/jobs/${encodeURIComponent(jobId)}?limit=1`;
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    const headers = await signHttpRequest({ method: "GET", url, key: key.key });
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${text}`);
    const job = (JSON.parse(text) as { job: Record<string, unknown> }).job;
    if (job.state !== "running") return job;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still running after ${WAIT_LIMIT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** From the Location header, which a custom `respond` keeps, else the default answer's job_id. */
function jobIdOf(location: string | null, text: string): string | undefined {
  const fromLocation = location?.match(/\/v1\/jobs\/([^/?#]+)$/)?.[1];
  if (fromLocation !== undefined) return decodeURIComponent(fromLocation);
  try {
    const id = (JSON.parse(text) as { job_id?: unknown }).job_id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** A commit-like sha (40 hex) that depends on the delivery id alone. */
async function shaOf(delivery: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(`choria-edge hook ${delivery}`),
  );
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function randomSha(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}
