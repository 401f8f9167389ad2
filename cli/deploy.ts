// `choria-edge deploy lambda`: builds the Lambda bundle and creates or updates the function, its
// configuration and a Function URL in RESPONSE_STREAM mode (the `stream` export), so NDJSON and SSE answers
// stream. Every AWS call goes through @aws-sdk/client-lambda; --endpoint points it at another API (tests,
// LocalStack). Failures become one line saying what to do, never a stack trace.
import { readFile } from "node:fs/promises";
import { commandArgs } from "./args.ts";
// The AWS SDK comes with deploy-lambda.ts, imported once the arguments are read: `deploy --help` need not load it.
import type { DeployPlan } from "./deploy-lambda.ts";

const RUNTIMES = ["nodejs22.x", "nodejs24.x"];
// The gateway waits up to 8 s (--sync-budget) before answering; a cold start adds the NATS connection.
const MIN_TIMEOUT_S = 10;
const ENV_LIMIT = 4096;

const USAGE = `usage: choria-edge deploy lambda --role <arn> [options]

Builds the gateway's Lambda bundle and creates the function, or updates its code and configuration, then
creates or updates its Function URL (auth NONE: the gateway checks every request's signature itself;
invoke mode RESPONSE_STREAM, so streamed answers arrive as they are written) and prints the URL.

  --name <name>              function name (default choria-edge-gateway)
  --role <arn>               execution role ARN (needed to create; an update keeps the current one)
  --runtime <id>             ${RUNTIMES.join(" or ")} (default ${RUNTIMES[0]})
  --memory <MB>              memory size (default 512)
  --timeout <s>              invocation limit, at least ${MIN_TIMEOUT_S} (default 30; Lambda's own default of 3 s is
                             below the gateway's 8 s wait budget)
  --architecture <arch>      x86_64 or arm64 (default x86_64)
  --env-file <file>          environment variables, KEY=VALUE lines (# comments); repeatable
  --env <KEY=VALUE>          one variable, after the files; repeatable
  --subnets <a,b>            VPC subnet ids, to reach a NATS server inside a VPC (with --security-groups)
  --security-groups <a,b>    VPC security group ids
  --layer <arn>              a layer version ARN (certificates, creds files under /opt); repeatable
  --zip <file>               upload this zip instead of building one (npm run build makes dist/lambda.zip)
  --region <region>          AWS region (default AWS_REGION / the profile's)
  --endpoint <url>           Lambda API endpoint instead of AWS's
  --dry-run                  print the plan; make only read calls

Updates leave what is not given alone: without --env/--env-file the environment stays as it is.
Credentials come from the AWS SDK's usual chain (AWS_PROFILE, AWS_ACCESS_KEY_ID..., SSO, instance role).`;

const OPTIONS = [
  { flag: "name", kind: "string", default: "choria-edge-gateway" },
  { flag: "role", kind: "string" },
  { flag: "runtime", kind: "string", default: RUNTIMES[0] ?? "" },
  { flag: "memory", kind: "int", default: "512" },
  { flag: "timeout", kind: "int", default: "30" },
  { flag: "architecture", kind: "string", default: "x86_64" },
  { flag: "env-file", kind: "multiple" },
  { flag: "env", kind: "multiple" },
  { flag: "subnets", kind: "list" },
  { flag: "security-groups", kind: "list" },
  { flag: "layer", kind: "multiple" },
  { flag: "zip", kind: "string" },
  { flag: "region", kind: "string" },
  { flag: "endpoint", kind: "string" },
  { flag: "dry-run", kind: "bool", default: false },
] as const;

interface Io {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** KEY=VALUE lines; blank lines and # comments skipped; the value is taken as it is, quotes included. */
export function parseEnvText(text: string, origin: string): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (match?.[1] === undefined) throw new Error(`${origin}:${index + 1}: expected KEY=VALUE`);
    variables[match[1]] = match[2] ?? "";
  }
  return variables;
}

async function environment(files: string[], pairs: string[]): Promise<Record<string, string> | undefined> {
  if (files.length === 0 && pairs.length === 0) return undefined;
  const variables: Record<string, string> = {};
  for (const file of files) {
    const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
      throw new Error(`--env-file ${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`);
    });
    Object.assign(variables, parseEnvText(text, file));
  }
  Object.assign(variables, parseEnvText(pairs.join("\n"), "--env"));
  return variables;
}

type Values = Extract<ReturnType<typeof commandArgs<typeof OPTIONS>>, { ok: true }>["values"];

/** The plan from the options, or what is wrong with them. */
async function planFrom(values: Values): Promise<DeployPlan | string> {
  if (!RUNTIMES.includes(values.runtime))
    return `--runtime ${values.runtime}: Lambda's Node runtimes for the gateway are ${RUNTIMES.join(", ")}`;
  const memory = Number(values.memory);
  const timeout = Number(values.timeout);
  if (!Number.isInteger(memory) || memory < 128 || memory > 10_240) return "--memory: 128 to 10240 MB";
  if (!Number.isInteger(timeout) || timeout < MIN_TIMEOUT_S || timeout > 900)
    return `--timeout: ${MIN_TIMEOUT_S} to 900 s (the gateway may wait 8 s for replies, plus its cold start)`;
  if (values.architecture !== "x86_64" && values.architecture !== "arm64")
    return "--architecture: x86_64 or arm64";
  const subnets = values.subnets ?? [];
  const groups = values["security-groups"] ?? [];
  if ((subnets.length === 0) !== (groups.length === 0))
    return "--subnets and --security-groups go together: Lambda needs both to place the function in a VPC";
  const env = await environment(values["env-file"] ?? [], values.env ?? []);
  // Lambda counts the variables as its JSON; say what to do instead of relaying its refusal.
  const envBytes = env === undefined ? 0 : Buffer.byteLength(JSON.stringify(env));
  if (envBytes > ENV_LIMIT)
    return `the environment is ${envBytes} bytes, over Lambda's ${ENV_LIMIT}: put PEM and creds files in a layer (--layer) and name them (CHORIA_EDGE_GATEWAY_CERT=/opt/...) instead of ..._PEM text`;
  return {
    name: values.name,
    role: values.role,
    runtime: values.runtime,
    handler: "index.stream",
    memory,
    timeout,
    architecture: values.architecture,
    ...(env ? { environment: env } : {}),
    ...(subnets.length > 0 ? { vpc: { subnets, securityGroups: groups } } : {}),
    layers: values.layer ?? [],
  };
}

async function bundleZip(zip: string | undefined, io: Io): Promise<Uint8Array> {
  if (zip !== undefined)
    return readFile(zip).catch((err: NodeJS.ErrnoException) => {
      throw new Error(
        `--zip ${zip}: ${err.code === "ENOENT" ? "no such file (npm run build makes dist/lambda.zip)" : err.message}`,
      );
    });
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  // The builder (esbuild) is a development dependency: an installed package deploys a zip it is given.
  const build = await import("../infra/build.ts").catch(() => {
    throw new Error(
      "building the bundle needs a source checkout with its dev dependencies; pass --zip <file>",
    );
  });
  const dir = await mkdtemp(join(tmpdir(), "choria-edge-deploy-"));
  try {
    const built = await build.buildLambda(dir);
    io.stderr.write(`built ${built.zip} (${(built.zipBytes / 1024).toFixed(1)} KiB)\n`);
    return await readFile(built.zip);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `choria-edge deploy lambda ...`: 0 deployed (or planned), 1 failed, 2 bad usage. */
export async function runDeploy(argv: string[], io: Io = process): Promise<number> {
  const args = commandArgs("deploy", USAGE, OPTIONS, argv, io);
  if (typeof args === "number") return args;
  const [target, ...extra] = args.positionals;
  if (target !== "lambda" || extra.length > 0) {
    io.stderr.write(`choria-edge deploy: the one target is 'lambda'\n\n${USAGE}\n`);
    return 2;
  }
  try {
    const plan = await planFrom(args.values);
    if (typeof plan === "string") {
      io.stderr.write(`choria-edge deploy lambda: ${plan}\n`);
      return 2;
    }
    const zip = await bundleZip(args.values.zip, io);
    const { deployLambda, lambdaClient } = await import("./deploy-lambda.ts");
    const client = lambdaClient({ region: args.values.region, endpoint: args.values.endpoint });
    const dryRun = args.values["dry-run"];
    try {
      // The plan is the output of a dry run; otherwise it is progress, and the URL is the output.
      const out = dryRun ? io.stdout : io.stderr;
      const url = await deployLambda(client, plan, zip, { dryRun, say: (line) => out.write(`${line}\n`) });
      if (!dryRun) io.stdout.write(`${url ?? "(Lambda returned no Function URL)"}\n`);
      else if (url !== undefined) io.stdout.write(`Function URL: ${url}\n`);
    } finally {
      client.destroy();
    }
    return 0;
  } catch (err) {
    io.stderr.write(`choria-edge deploy lambda: ${describeAwsError(err)}\n`);
    return 1;
  }
}

/** One line for the operator: what went wrong and, where it is known, what to do about it. */
export function describeAwsError(err: unknown): string {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? "Error";
  const message = e.message ?? String(err);
  // Plain errors (ours: a missing file, no role; or a refused connection) are sentences already.
  if (name === "Error") return message;
  if (name === "CredentialsProviderError" || /could not load credentials/i.test(message))
    return "no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run `aws sso login`";
  if (/region is missing/i.test(message)) return "no AWS region: pass --region or set AWS_REGION";
  if (/AccessDenied/.test(name) || e.$metadata?.httpStatusCode === 403)
    return `AWS refused (${name}): ${message}\n  the deploying identity needs lambda:GetFunction, CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration, GetFunctionUrlConfig, CreateFunctionUrlConfig, UpdateFunctionUrlConfig, AddPermission, and iam:PassRole on the execution role (README, "Lambda")`;
  if (name === "ResourceConflictException")
    return `the function is busy with another change (ResourceConflictException): ${message}\n  wait for it to finish, then deploy again`;
  return `${name}: ${message}`;
}
