// `choria-edge hook send`: a webhook delivery signed the way its sender signs it (GitHub, Standard
// Webhooks, Slack, Stripe), POSTed to a gateway's /v1/hooks/<trigger> or printed as a curl command. It
// exists to try triggers without the SaaS side: the gateway cannot tell its deliveries from the real ones.
// Only the usage and options are here, so that `hook --help` loads no signing code: hook-run.ts does the rest.
import type { OptionValues } from "../lib/config/mod.ts";
import { commandArgs } from "./args.ts";

export const DEFAULT_URL = "http://127.0.0.1:8080";

// The schemes are spelled out rather than read from lib/security/webhooks, so that `hook --help` need not
// load it; test/unit/cli/hook-usage.test.ts keeps the list equal to WEBHOOK_SCHEMES.
export const HOOK_USAGE = `usage: choria-edge hook send <trigger> [options]
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
  --scheme <s>           github | standard-webhooks | slack | stripe (default github)
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

export const HOOK_OPTIONS = [
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

export type HookValues = OptionValues<typeof HOOK_OPTIONS>;

/** Exit codes: 0 a 2xx answer (and with --wait, a job that ended complete), 1 otherwise, 2 usage. */
export async function runHook(
  argv: string[],
  io: HookIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const args = commandArgs("hook", HOOK_USAGE, HOOK_OPTIONS, argv, io);
  if (typeof args === "number") return args;
  const { runHookCommand } = await import("./hook-run.ts");
  return runHookCommand(args.positionals, args.values, io);
}
