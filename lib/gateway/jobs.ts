import { type Context, Hono } from "hono";
import { parseDuration } from "../clock/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { JobEvent, JobRecord, JobStore } from "../results/jobs/mod.ts";
import {
  endJob,
  isJobId,
  JOB_STATES,
  type JobState,
  type JobView,
  jobView,
  RESULT_FILTERS,
  type ResultFilter,
} from "../results/jobs/mod.ts";
import { problem as catalogued, type ProblemKind, problemResponse, problemType } from "./problems.ts";
import { asRefusal } from "./refusal.ts";

/*
 * The async job API, a Hono sub-app with absolute paths (mount with `app.route("/", jobRoutes(deps))`
 * behind the authentication middleware):
 *
 *   GET    /v1/jobs              the jobs the caller may read, newest first
 *          ?state=running,complete  ?trigger=<name>  ?since=<RFC 3339 time or a duration such as 2h>
 *          ?limit=50 (1..500)  ?cursor=<next_cursor>
 *          → { jobs[], next_cursor }, and a `Link: <…>; rel="next"` header while there is more
 *   GET    /v1/jobs/:id          summary and one page of per-node results
 *          ?status=ok,failed,no_reply,unexpected   only these results
 *          ?limit=500 (1..maxPageSize)             results per page
 *          ?cursor=<next_cursor>                   the page after the one that gave the cursor
 *          → { job, results[], next_cursor }, and a `Link: <…>; rel="next"` header while there is more
 *   GET    /v1/jobs/:id/events   server-sent events: `result` (id = its seq) for every result as it is
 *          stored, then `end` (id `end`) with the final summary; a reconnect with Last-Event-ID goes on
 *          after that event, and after `end` it gets 204 so EventSource stops reconnecting
 *   DELETE /v1/jobs/:id          cancel: stop waiting, mark the nodes still out as no_reply → { job }
 *
 * Errors are RFC 9457 problem documents with the gateway's stable `type` URIs.
 */

export type JobAction = "read" | "cancel";

export interface JobRoutesDeps {
  store: JobStore;
  /** The key id the authentication layer established for this request, or undefined when there is none. */
  callerKeyId: (c: Context) => string | undefined;
  /** Whether this key may read (or cancel) this job: its creator, or a key whose policy allows it. */
  authorize: (callerKeyId: string, job: JobView, action: JobAction) => boolean | Promise<boolean>;
  /** Results per page when the caller does not say (500), and the most it may ask for (1000). */
  pageSize?: number;
  maxPageSize?: number;
  /** A comment is sent on an event stream idle this long, so that proxies keep it open (15 s). */
  heartbeatMs?: number;
  /** Where a failure is told; the caller gets a generic internal problem. */
  log?: Logger;
  /** What `since=2h` counts back from. */
  now?: () => number;
}

/** The authorize hook for a gateway without read policies: a job is its creator's alone. */
export function creatorOnly(callerKeyId: string, job: JobView): boolean {
  return callerKeyId === job.caller;
}

/** A problem of the catalogue, naming the job path it is about. */
function problem(c: Context, kind: ProblemKind, detail: string, headers?: Record<string, string>): Response {
  return problemResponse(catalogued(kind, detail, { instance: c.req.path }), headers);
}

const CURSOR = /^\d{1,15}$/;
const LIMIT = /^\d{1,6}$/;
const encoder = new TextEncoder();

export function jobRoutes(deps: JobRoutesDeps): Hono {
  const pageSize = deps.pageSize ?? 500;
  const maxPageSize = deps.maxPageSize ?? 1000;
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const app = new Hono();

  /** The job if the caller may do `action` with it, else the problem to answer with. */
  async function access(c: Context, action: JobAction) {
    const caller = deps.callerKeyId(c);
    if (caller === undefined)
      return problem(c, "missing-credentials", "this request carries no verified key");
    const id = c.req.param("id") ?? "";
    // One answer for unknown and malformed ids: job ids are unguessable, and that must not leak either.
    const notFound = () => problem(c, "not-found", `there is no job ${JSON.stringify(id.slice(0, 64))}`);
    if (!isJobId(id)) return notFound();
    const found = await deps.store.get(id);
    if (found === undefined) return notFound();
    if (!(await deps.authorize(caller, jobView(found.record), action)))
      return problem(c, "forbidden", `key ${JSON.stringify(caller)} may not ${action} this job`);
    return found.record;
  }

  app.get("/v1/jobs", async (c) => {
    const caller = deps.callerKeyId(c);
    if (caller === undefined)
      return problem(c, "missing-credentials", "this request carries no verified key");
    const query = parseListQuery(c.req.query(), (deps.now ?? Date.now)());
    if (typeof query === "string") return problem(c, "invalid-query", query);
    const list = await deps.store.list({
      limit: query.limit,
      ...(query.before === undefined ? {} : { before: query.before }),
      include: (record) =>
        (query.states.size === 0 || query.states.has(record.state)) &&
        (query.trigger === undefined || record.trigger?.trigger === query.trigger) &&
        (query.since === undefined || Date.parse(record.created_at) >= query.since) &&
        deps.authorize(caller, jobView(record), "read"),
    });
    if (list.unreadable > 0)
      deps.log?.("warn", "job records that do not read as jobs were left out of a list", {
        unreadable: list.unreadable,
      });
    const headers: Record<string, string> = { "cache-control": "no-store" };
    if (list.next !== null) {
      const next = new URLSearchParams(c.req.query());
      next.set("cursor", String(list.next));
      headers.link = `<${c.req.path}?${next}>; rel="next"`;
    }
    return c.json(
      { jobs: list.jobs.map(jobView), next_cursor: list.next === null ? null : String(list.next) },
      200,
      headers,
    );
  });

  app.get("/v1/jobs/:id", async (c) => {
    const query = parsePageQuery(c.req.query(), pageSize, maxPageSize);
    if (typeof query === "string") return problem(c, "invalid-query", query);
    const record = await access(c, "read");
    if (record instanceof Response) return record;
    const page = await deps.store.page(record, query);
    const headers: Record<string, string> = { "cache-control": "no-store" };
    if (page.next !== null) {
      const next = new URLSearchParams({ cursor: String(page.next), limit: String(query.limit) });
      if (query.filters.size > 0) next.set("status", [...query.filters].join(","));
      headers.link = `<${c.req.path}?${next}>; rel="next"`;
    }
    return c.json(
      {
        job: jobView(record),
        results: page.results,
        next_cursor: page.next === null ? null : String(page.next),
      },
      200,
      headers,
    );
  });

  app.get("/v1/jobs/:id/events", async (c) => {
    const record = await access(c, "read");
    if (record instanceof Response) return record;
    const lastEventId = c.req.header("last-event-id")?.trim() ?? "";
    if (lastEventId === "end" && record.settled) return c.body(null, 204);
    const after = CURSOR.test(lastEventId) ? Number(lastEventId) : 0;
    const body = eventStream(deps, record, after, heartbeatMs);
    return c.body(body, 200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    });
  });

  app.onError((err, c) => {
    const { doc, headers } = asRefusal(err, deps.log);
    return problemResponse({ ...doc, instance: c.req.path }, headers);
  });

  app.delete("/v1/jobs/:id", async (c) => {
    const record = await access(c, "cancel");
    if (record instanceof Response) return record;
    const ended = await endJob(deps.store, record.id, "cancel");
    if (ended === undefined) return problem(c, "not-found", "the job expired while it was cancelled");
    return c.json({ job: jobView(ended) }, 200, { "cache-control": "no-store" });
  });

  return app;
}

/** The job's events as SSE frames: each result, then `end`; a comment every `heartbeatMs` while idle. */
function eventStream(
  deps: JobRoutesDeps,
  record: JobRecord,
  after: number,
  heartbeatMs: number,
): ReadableStream<Uint8Array> {
  const stop = new AbortController();
  const events = deps.store.events(record, { after, signal: stop.signal });
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (text: string) => {
        if (!stop.signal.aborted) controller.enqueue(encoder.encode(text));
      };
      heartbeat = setInterval(() => send(": keep-alive\n\n"), heartbeatMs);
      void (async () => {
        try {
          for await (const event of events) send(sseFrame(event));
        } catch (err) {
          deps.log?.("error", "job event stream failed", { job_id: record.id, error: String(err) });
          send(
            `event: error\ndata: ${JSON.stringify({ type: problemType("internal"), detail: "reading the job's results failed; the gateway's log has the error" })}\n\n`,
          );
        } finally {
          clearInterval(heartbeat);
          if (!stop.signal.aborted) {
            stop.abort();
            controller.close();
          }
        }
      })();
    },
    cancel() {
      clearInterval(heartbeat);
      stop.abort();
    },
  });
}

function sseFrame(event: JobEvent): string {
  if (event.type === "result")
    return `id: ${event.result.seq}\nevent: result\ndata: ${JSON.stringify(event.result)}\n\n`;
  return `id: end\nevent: end\ndata: ${JSON.stringify(jobView(event.job))}\n\n`;
}

interface PageQuery {
  after: number;
  limit: number;
  filters: Set<ResultFilter>;
}

/** A comma-separated list of some of `allowed`, or what is wrong with it. */
function oneOf<T extends string>(
  name: string,
  text: string | undefined,
  allowed: readonly T[],
): Set<T> | string {
  const chosen = new Set<T>();
  for (const value of (text ?? "").split(",")) {
    if (value === "") continue;
    if (!(allowed as readonly string[]).includes(value))
      return `${name}: ${JSON.stringify(value.slice(0, 32))} is not one of ${allowed.join(", ")}`;
    chosen.add(value as T);
  }
  return chosen;
}

/** `limit` (1..max, `fallback` when absent) and `cursor` (a seq), or what is wrong with them. */
function pageParams(
  query: Record<string, string>,
  fallback: number,
  max: number,
): { limit: number; cursor: number | undefined } | string {
  let limit = fallback;
  if (query.limit !== undefined) {
    limit = LIMIT.test(query.limit) ? Number(query.limit) : 0;
    if (limit < 1 || limit > max) return `limit: must be a whole number from 1 to ${max}`;
  }
  if (query.cursor !== undefined && !CURSOR.test(query.cursor))
    return "cursor: not a cursor this API gave out";
  return { limit, cursor: query.cursor === undefined ? undefined : Number(query.cursor) };
}

function parsePageQuery(
  query: Record<string, string>,
  pageSize: number,
  maxPageSize: number,
): PageQuery | string {
  const filters = oneOf("status", query.status, RESULT_FILTERS);
  if (typeof filters === "string") return filters;
  const page = pageParams(query, pageSize, maxPageSize);
  if (typeof page === "string") return page;
  return { after: page.cursor ?? 0, limit: page.limit, filters };
}

interface ListQuery {
  states: Set<JobState>;
  trigger: string | undefined;
  /** Only jobs created at or after this time (ms since the epoch). */
  since: number | undefined;
  limit: number;
  before: number | undefined;
}

const LIST_PARAMS = new Set(["state", "trigger", "since", "limit", "cursor"]);
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
export const LIST_PAGE = 50;
export const MAX_LIST_PAGE = 500;

function parseListQuery(query: Record<string, string>, now: number): ListQuery | string {
  for (const name of Object.keys(query))
    if (!LIST_PARAMS.has(name)) return `${name.slice(0, 32)}: not a parameter of this list`;
  const states = oneOf("state", query.state, JOB_STATES);
  if (typeof states === "string") return states;
  const trigger = query.trigger;
  if (trigger !== undefined && (trigger === "" || trigger.length > 128))
    return "trigger: a trigger name of 1 to 128 characters";
  let since: number | undefined;
  if (query.since !== undefined) {
    const ago = parseDuration(query.since);
    since = RFC3339.test(query.since) ? Date.parse(query.since) : ago === undefined ? Number.NaN : now - ago;
    if (!Number.isFinite(since)) return "since: an RFC 3339 time or a duration such as 30m, 2h or 7d";
  }
  const page = pageParams(query, LIST_PAGE, MAX_LIST_PAGE);
  if (typeof page === "string") return page;
  return { states, trigger, since, limit: page.limit, before: page.cursor };
}
