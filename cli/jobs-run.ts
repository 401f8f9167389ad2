// What `choria-edge jobs` does once cli/jobs.ts has read its arguments.
import type { CommandArgs } from "./args.ts";
import type { GatewayAnswer } from "./http.ts";
import { type JOBS_OPTIONS, JOBS_USAGE } from "./jobs.ts";
import { localStack } from "./local-stack.ts";
import type { ReqIo } from "./req.ts";
import { type GatewayCaller, gatewayCaller, renderTable, reportProblem, signedFetch } from "./req-run.ts";

/** A job as the gateway shows it; only what this command prints is typed. */
interface JobView {
  id: string;
  state: string;
  agent: string;
  action: string;
  created_at: string;
  expected: number | null;
  counts: { ok: number; failed: number; no_reply: number; unexpected: number; outstanding: number | null };
  trigger: Record<string, string> | null;
}

interface JobResult {
  identity: string;
  status: string;
  statuscode: number | null;
  statusmsg: string | null;
  data: unknown;
}

/** What a subcommand gets: the job id (none for list), the signer, --json, the query it sends, the output. */
interface Call {
  id: string | undefined;
  caller: GatewayCaller;
  json: boolean;
  query: URLSearchParams;
  io: ReqIo;
}

type Subcommand = (call: Call) => Promise<number>;

const SUBCOMMANDS: Record<string, Subcommand> = { list, get, watch, cancel };

/** The subcommand the parsed command line names, run. */
export async function runJobsCommand(args: CommandArgs<typeof JOBS_OPTIONS>, io: ReqIo): Promise<number> {
  const { values, positionals } = args;
  const [name, id, ...extra] = positionals;
  const usageError = (message: string) => {
    io.stderr.write(`choria-edge jobs: ${message}\n\n${JOBS_USAGE}\n`);
    return 2;
  };
  const run = name !== undefined && Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;
  if (run === undefined) return usageError("name a subcommand: list, get, watch or cancel");
  if (name !== "list" && id === undefined) return usageError(`${name} needs a job id`);
  if (extra.length > 0 || (name === "list" && id !== undefined))
    return usageError(`unexpected argument ${JSON.stringify(extra[0] ?? id)}`);
  const query = new URLSearchParams();
  for (const flag of name === "list" ? LIST_FLAGS : name === "get" ? (["status"] as const) : []) {
    const value = values[flag];
    if (value !== undefined) query.set(flag, value);
  }
  const caller = await gatewayCaller("jobs", values, localStack(io.stderr), io);
  if (typeof caller === "number") return caller;
  return run({ id, caller, json: values.json === true, query, io });
}

const LIST_FLAGS = ["state", "trigger", "since", "limit", "cursor"] as const;

/** A signed request: the answer when it is a success, else the exit code after saying what went wrong. */
async function ask(
  caller: GatewayCaller,
  io: ReqIo,
  method: "GET" | "DELETE",
  path: string,
  accept = "application/json",
  headers: Record<string, string> = {},
): Promise<GatewayAnswer | number> {
  const response = await signedFetch("jobs", caller, io, method, path, { accept, headers });
  if (response === undefined) return 1;
  if (!response.ok) return reportProblem("jobs", response, io);
  return response;
}

/** GET and parse a JSON document; the exit code after saying what went wrong. */
async function getJson<T>(caller: GatewayCaller, path: string, io: ReqIo): Promise<T | number> {
  const response = await ask(caller, io, "GET", path);
  return typeof response === "number" ? response : ((await response.json()) as T);
}

const jobPath = (id: string | undefined) => `/v1/jobs/${encodeURIComponent(id ?? "")}`;

async function list({ caller, json, query, io }: Call): Promise<number> {
  const page = await getJson<{ jobs: JobView[]; next_cursor: string | null }>(
    caller,
    `/v1/jobs${query.size > 0 ? `?${query}` : ""}`,
    io,
  );
  if (typeof page === "number") return page;
  if (json) {
    io.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
    return 0;
  }
  io.stdout.write(renderJobs(page.jobs, Date.now()));
  if (page.next_cursor !== null)
    io.stderr.write(`more: choria-edge jobs list --cursor ${page.next_cursor}\n`);
  return 0;
}

/** One line per job: id, state, what ran, what started it, its counts and its age. */
export function renderJobs(jobs: readonly JobView[], now: number): string {
  const header = ["id", "state", "action", "trigger", "ok", "failed", "no_reply", "waiting", "age"];
  const rows = jobs.map((job) => [
    job.id,
    job.state,
    `${job.agent}#${job.action}`,
    job.trigger?.trigger ?? "-",
    String(job.counts.ok),
    String(job.counts.failed),
    String(job.counts.no_reply),
    job.counts.outstanding === null ? "?" : String(job.counts.outstanding),
    age(now - Date.parse(job.created_at)),
  ]);
  return `${table(header, rows)}${jobs.length === 0 ? "(no jobs)\n" : ""}`;
}

function table(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)),
  );
  const format = (row: readonly string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  return `${[header, ...rows].map(format).join("\n")}\n`;
}

function age(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

async function get({ id, caller, json, query, io }: Call): Promise<number> {
  const path = jobPath(id);
  const results: JobResult[] = [];
  let job: JobView | undefined;
  for (let cursor: string | null = ""; cursor !== null; ) {
    if (cursor !== "") query.set("cursor", cursor);
    const page = await getJson<{ job: JobView; results: JobResult[]; next_cursor: string | null }>(
      caller,
      `${path}${query.size > 0 ? `?${query}` : ""}`,
      io,
    );
    if (typeof page === "number") return page;
    job = page.job;
    results.push(...page.results);
    cursor = page.next_cursor;
  }
  if (job === undefined) return 1;
  if (json) io.stdout.write(`${JSON.stringify({ job, results }, null, 2)}\n`);
  else io.stdout.write(`${summaryLines(job)}\n${renderResults(results, job)}`);
  return 0;
}

function summaryLines(job: JobView): string {
  const trigger = job.trigger === null ? "" : `\ntrigger   ${job.trigger.trigger ?? "?"}`;
  return `job       ${job.id}\naction    ${job.agent}#${job.action}\nstate     ${job.state}\ncreated   ${job.created_at}${trigger}\n`;
}

/** The results in `req`'s table: no_reply results as its silent nodes, the job's counts as its summary. */
export function renderResults(results: readonly JobResult[], job: JobView): string {
  const replies = results.filter((result) => result.status !== "no_reply");
  return renderTable(replies, {
    summary: { ...job.counts },
    no_reply: results.filter((result) => result.status === "no_reply").map((result) => result.identity),
  });
}

/** How often watch opens the event stream again after it broke off, and how long it waits first. */
const RECONNECTS = 5;
const RECONNECT_DELAY_MS = 1000;

async function watch({ id, caller, json, io }: Call): Promise<number> {
  const progress = io.stderr.isTTY === true;
  const results: JobResult[] = [];
  let ok = 0;
  let lastId: string | undefined;
  for (let attempt = 0; attempt <= RECONNECTS; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS));
    // Resumed after the last result seen: the gateway sends only what came after it.
    const response = await ask(caller, io, "GET", `${jobPath(id)}/events`, "text/event-stream", {
      ...(lastId === undefined ? {} : { "last-event-id": lastId }),
    });
    if (typeof response === "number") return response;
    try {
      for await (const event of serverSentEvents(response)) {
        if (event.event === "result") {
          const result = JSON.parse(event.data) as JobResult;
          results.push(result);
          if (result.status === "ok") ok++;
          if (event.id !== undefined) lastId = event.id;
          if (json) io.stdout.write(`${event.data}\n`);
        } else if (event.event === "end") {
          if (progress) io.stderr.write("\r\x1b[K");
          return showEnd(JSON.parse(event.data) as JobView, results, json, io);
        } else if (event.event === "error") {
          io.stderr.write(
            `${progress ? "\r\x1b[K" : ""}choria-edge jobs: the gateway ended the stream: ${event.data}\n`,
          );
          return 1;
        }
        if (progress)
          io.stderr.write(`\r\x1b[Kresults ${results.length}  ok ${ok}  not ok ${results.length - ok}`);
      }
    } catch {
      // The connection broke off mid-stream: opened again below, like a stream that ended early.
    }
  }
  if (progress) io.stderr.write("\r\x1b[K");
  io.stderr.write(
    `choria-edge jobs: the event stream broke off ${RECONNECTS + 1} times before the job ended\n`,
  );
  return 1;
}

function showEnd(job: JobView, results: readonly JobResult[], json: boolean, io: ReqIo): number {
  if (json) io.stdout.write(`${JSON.stringify({ job })}\n`);
  else io.stdout.write(`${summaryLines(job)}\n${renderResults(results, job)}`);
  return succeeded(job) ? 0 : 1;
}

/** Every node it waited for answered, and every answer was OK. */
function succeeded(job: JobView): boolean {
  return job.state === "complete" && job.counts.failed === 0 && job.counts.no_reply === 0;
}

async function cancel({ id, caller, json, io }: Call): Promise<number> {
  const response = await ask(caller, io, "DELETE", jobPath(id));
  if (typeof response === "number") return response;
  const { job } = (await response.json()) as { job: JobView };
  io.stdout.write(json ? `${JSON.stringify({ job }, null, 2)}\n` : summaryLines(job));
  return 0;
}

interface ServerSentEvent {
  event: string;
  data: string;
  id?: string;
}

/** The events of a text/event-stream body (WHATWG HTML §9.2): comments and ids are skipped. */
async function* serverSentEvents(response: GatewayAnswer): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let pending = "";
  let event = "message";
  let data: string[] = [];
  let id: string | undefined;
  for await (const chunk of response.body) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.search(/\r?\n/);
    while (newline !== -1) {
      const line = pending.slice(0, newline);
      pending = pending.slice(pending[newline] === "\r" ? newline + 2 : newline + 1);
      newline = pending.search(/\r?\n/);
      if (line === "") {
        if (data.length > 0) yield { event, data: data.join("\n"), ...(id === undefined ? {} : { id }) };
        event = "message";
        data = [];
        id = undefined;
        continue;
      }
      const colon = line.indexOf(":");
      if (colon === 0) continue;
      const field = colon === -1 ? line : line.slice(0, colon);
      const text = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = text;
      else if (field === "data") data.push(text);
      else if (field === "id") id = text;
    }
  }
}
