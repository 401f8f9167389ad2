// `choria-edge jobs`: the gateway's async jobs from a terminal. Requests are signed as `choria-edge req`
// signs them, with the same key, gateway and local-stack defaults.
// Only the usage and options are here, so that `jobs --help` loads no signing code: jobs-run.ts does the rest.
import { commandArgs } from "./args.ts";
import type { ReqIo } from "./req.ts";

export const JOBS_USAGE = `usage: choria-edge jobs list [--state <s,...>] [--trigger <name>] [--since <time|duration>] [--limit <n>] [--cursor <c>]
       choria-edge jobs get <id> [--status <ok,failed,no_reply,unexpected>]
       choria-edge jobs watch <id>
       choria-edge jobs cancel <id>

Reads the gateway's async jobs (GET /v1/jobs, GET /v1/jobs/<id>, its event stream, DELETE).

  list     the jobs your key may read, newest first: id, state, trigger, counts, age
  get      a job's summary and its per-node results (every page)
  watch    follow a job as results arrive (a progress line on a terminal), then its summary;
           exit code 1 unless every node answered OK
  cancel   stop waiting for a job: the nodes still out become no_reply

  --gateway <url>  --key <file>  --key-id <id>   as for 'choria-edge req' (same environment variables
                                                 and local-stack defaults)
  --json           print the gateway's JSON instead of tables

An id that starts with '-' (older gateways made some) goes after '--': choria-edge jobs get -- -Xy...`;

export const JOBS_OPTIONS = [
  { flag: "gateway", kind: "string" },
  { flag: "key", kind: "string" },
  { flag: "key-id", kind: "string" },
  { flag: "state", kind: "string" },
  { flag: "trigger", kind: "string" },
  { flag: "since", kind: "string" },
  { flag: "limit", kind: "string" },
  { flag: "cursor", kind: "string" },
  { flag: "status", kind: "string" },
  { flag: "json", kind: "bool" },
] as const;

/** Exit codes: 0 done (for watch: every node answered OK), 1 the gateway refused or the job failed, 2 usage. */
export async function runJobs(
  argv: string[],
  io: ReqIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const args = commandArgs("jobs", JOBS_USAGE, JOBS_OPTIONS, argv, io);
  if (typeof args === "number") return args;
  const { runJobsCommand } = await import("./jobs-run.ts");
  return runJobsCommand(args, io);
}
