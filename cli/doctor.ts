// `choria-edge doctor`: checks a gateway configuration before it is deployed, reading what the runtime
// would read (flags and CHORIA_EDGE_GATEWAY_* for Node and Lambda; wrangler.toml's [vars], a dotenv file
// of secrets and the environment for Workers), and says for each thing found wrong what to do about it.
// Only the usage and options are here, so that `doctor --help` loads none of what it checks with:
// doctor-run.ts does the checks.
import { GATEWAY_ENV_PREFIX, GATEWAY_OPTIONS } from "../functions/gateway-options.ts";
import { readOptions } from "../lib/config/mod.ts";
import type { CommandArgs } from "./args.ts";

export type { CheckResult, CheckStatus } from "./doctor-run.ts";

const USAGE = `usage: choria-edge doctor [--target node|lambda|workers] [--json] [gateway options]

Checks a gateway configuration before deploying it: the caller keys document, the gateway certificate
and key, the caller ids, the trigger file, the NATS servers with those credentials, and the JetStream
buckets the gateway uses. One line per check (ok, warn or fail, and what to do); exit code 1 on any fail.

  --target <runtime>      node (default) or lambda: the gateway's flags and CHORIA_EDGE_GATEWAY_* variables,
                          as 'choria-edge gateway --help' lists them;
                          workers: wrangler.toml's [vars], then --env-file, then the environment
  --wrangler-config <f>   with --target workers (default ./wrangler.toml)
  --env-file <f>          with --target workers: the secrets, KEY=value lines (default ./.dev.vars if present)
  --timeout <ms>          NATS connection limit (default 3000)
  --json                  the checks as one JSON document`;

const DOCTOR_OPTIONS = [
  { flag: "target", kind: "string", default: "node" },
  { flag: "wrangler-config", kind: "string" },
  { flag: "env-file", kind: "string" },
  { flag: "timeout", kind: "string", default: "3000" },
  { flag: "json", kind: "bool", default: false },
] as const;

// Doctor's own options, then the gateway's, which it reads as the gateway would.
const DOCTOR_READS = [...DOCTOR_OPTIONS, ...GATEWAY_OPTIONS];

export type DoctorArgs = CommandArgs<typeof DOCTOR_READS>;

export interface DoctorIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export async function runDoctor(
  argv: string[],
  io: DoctorIo = process,
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  const read = readOptions(DOCTOR_READS, GATEWAY_ENV_PREFIX, argv, env, {
    positionals: false,
  });
  if (!read.ok) {
    if ("help" in read) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    io.stderr.write(`choria-edge doctor: ${read.error}\n\n${USAGE}\n`);
    return 2;
  }
  const target = read.str("target");
  const timeoutMs = Number(read.str("timeout"));
  if ((target !== "node" && target !== "lambda" && target !== "workers") || !(timeoutMs > 0)) {
    io.stderr.write(`choria-edge doctor: --target is node, lambda or workers; --timeout a number of ms\n`);
    return 2;
  }
  const { checkGateway } = await import("./doctor-run.ts");
  return checkGateway(read, target, timeoutMs, io, env);
}
