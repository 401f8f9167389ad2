// What `choria-edge hook` does once cli/hook.ts has read its arguments, and how it signs a delivery.
import { demoCallerKeyPath } from "../infra/demo-caller.ts";
import { demoSecretPath, readSecretFile } from "../infra/demo-triggers.ts";
import type { StackFile } from "../infra/stack-file.ts";
import {
  FileProblem,
  type MissingFileHint,
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
import { DEFAULT_URL, type HookIo, type HookValues } from "./hook.ts";
import { localStack } from "./local-stack.ts";

const WAIT_LIMIT_MS = 120_000;
const POLL_MS = 500;

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

class UsageError extends Error {}

/** The verb the parsed command line names, run. */
export async function runHookCommand(
  positionals: readonly string[],
  values: HookValues,
  io: HookIo,
): Promise<number> {
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

async function send(trigger: string, values: HookValues, io: HookIo): Promise<number> {
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
  values: HookValues,
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
