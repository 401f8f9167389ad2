import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../lib/clock/mod.ts";
import { creatorOnly, type JobRoutesDeps, jobRoutes } from "../../../lib/gateway/jobs.ts";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import { MemoryKvBucket } from "../../../lib/kv/memory.ts";
import { KvUnavailable } from "../../../lib/kv/mod.ts";
import { endJob } from "../../../lib/results/jobs/lifecycle.ts";
import type { JobRecord, JobView, NewJob, StoredResult } from "../../../lib/results/jobs/model.ts";
import { JobStore } from "../../../lib/results/jobs/store.ts";
import { newJobId } from "../../../lib/results/jobs/subjects.ts";
import { CALLER, newJob } from "../results/jobs/support.ts";

function ok(identity: string): StoredResult {
  return {
    identity,
    status: "ok",
    statuscode: 0,
    statusmsg: "OK",
    data: {},
    received_at: "2026-01-01T00:00:00.000Z",
  };
}

/** The job routes behind a stand-in for the auth layer, which puts the verified key id on the context. */
function app(store: JobStore, deps: Partial<JobRoutesDeps> = {}) {
  const outer = new Hono<{ Variables: { keyId: string } }>();
  outer.use(async (c, next) => {
    const key = c.req.header("x-test-key");
    if (key) c.set("keyId", key);
    await next();
  });
  outer.route(
    "/",
    jobRoutes({
      store,
      callerKeyId: (c) => c.get("keyId") as string | undefined,
      authorize: (key, job, action) => creatorOnly(key, job) || (key === "key-auditor" && action === "read"),
      ...deps,
    }),
  );
  return outer;
}

async function setup(targets = ["a", "b", "c"]) {
  const store = new JobStore(new MemoryKvBucket());
  const outcome = await store.create(newJob({ request_id: "r1", targets }));
  if (outcome.outcome !== "created") throw new Error(outcome.outcome);
  return { store, job: outcome.job, http: app(store) };
}

const as = (key: string, headers: Record<string, string> = {}) => ({
  headers: { "x-test-key": key, ...headers },
});

class WatchCountingBucket extends MemoryKvBucket {
  watching = 0;
  override async *watch(filter: string, options: { fromRevision?: number; signal: AbortSignal }) {
    this.watching++;
    try {
      yield* super.watch(filter, options);
    } finally {
      this.watching--;
    }
  }
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function readAll(response: Response): Promise<string> {
  return await response.text();
}

interface Frame {
  id?: string;
  event?: string;
  data?: string;
}

function frames(text: string): Frame[] {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "" && !block.startsWith(":"))
    .map((block) => {
      const frame: Frame = {};
      for (const line of block.split("\n")) {
        const colon = line.indexOf(": ");
        const field = line.slice(0, colon) as keyof Frame;
        frame[field] = line.slice(colon + 2);
      }
      return frame;
    });
}

describe("GET /v1/jobs/:id", () => {
  it("shows the summary and the results to the job's creator", async () => {
    const { store, job, http } = await setup();
    await store.putResult(job.id, ok("a"));
    // Counting is the collector's part; here it is done by hand.
    await store.update(job.id, (r) => ({ ...r, counts: { ...r.counts, ok: 1 } }));
    const response = await http.request(`/v1/jobs/${job.id}`, as(CALLER));
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.job).toMatchObject({
      id: job.id,
      state: "running",
      expected: 3,
      counts: { ok: 1, outstanding: 2 },
    });
    expect(body.results.map((r: StoredResult) => r.identity)).toEqual(["a"]);
    expect(body.results[0].seq).toBeTypeOf("number");
    expect(body.next_cursor).toBeNull();
  });

  it("answers problem documents: 401 without a key, 404 for unknown or malformed ids, 403 for other keys", async () => {
    const { job, http } = await setup();
    const cases: [string, RequestInit, number, string][] = [
      [`/v1/jobs/${job.id}`, {}, 401, "missing-credentials"],
      [`/v1/jobs/${newJobId()}`, as(CALLER), 404, "not-found"],
      ["/v1/jobs/..%2F..%2Fetc", as(CALLER), 404, "not-found"],
      [`/v1/jobs/${job.id}`, as("key-other"), 403, "forbidden"],
      [`/v1/jobs/${job.id}/events`, as("key-other"), 403, "forbidden"],
    ];
    for (const [path, init, status, kind] of cases) {
      const response = await http.request(path, init);
      expect(response.status, path).toBe(status);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      expect(await response.json()).toMatchObject({ type: `${PROBLEM_BASE}${kind}`, status });
    }
    const cancel = await http.request(`/v1/jobs/${job.id}`, { method: "DELETE", ...as("key-auditor") });
    expect(cancel.status).toBe(403);
    expect((await http.request(`/v1/jobs/${job.id}`, as("key-auditor"))).status).toBe(200);
  });

  it("answers 503 with Retry-After when the jobs bucket cannot answer, and 500 for anything else", async () => {
    const { job } = await setup();
    const failing = (err: Error) =>
      new (class extends MemoryKvBucket {
        override async get(): Promise<never> {
          throw err;
        }
      })();
    const unavailable = await app(
      new JobStore(failing(new KvUnavailable("the bucket's stream has no leader"))),
    ).request(`/v1/jobs/${job.id}`, as(CALLER));
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get("retry-after")).toBe("1");
    expect(await unavailable.json()).toMatchObject({ type: `${PROBLEM_BASE}upstream-unavailable` });
    const broken = await app(new JobStore(failing(new TypeError("a fault of ours")))).request(
      `/v1/jobs/${job.id}`,
      as(CALLER),
    );
    expect(broken.status).toBe(500);
    expect(broken.headers.get("retry-after")).toBeNull();
  });

  it("pages with a cursor and a Link header, filtered by status", async () => {
    const identities = Array.from({ length: 25 }, (_, i) => `n${i}`);
    const { store, job, http } = await setup(identities);
    for (const identity of identities.slice(0, 20)) await store.putResult(job.id, ok(identity));
    await endJob(store, job.id, "deadline");
    const first = await http.request(`/v1/jobs/${job.id}?limit=10&status=ok`, as(CALLER));
    const page1 = await first.json();
    expect(page1.results).toHaveLength(10);
    expect(page1.job).toMatchObject({ state: "timed_out", counts: { ok: 20, no_reply: 5, outstanding: 0 } });
    const link = first.headers.get("link");
    expect(link).toBe(`</v1/jobs/${job.id}?cursor=${page1.next_cursor}&limit=10&status=ok>; rel="next"`);
    const next = link!.slice(1, link!.indexOf(">"));
    const page2 = await (await http.request(next, as(CALLER))).json();
    expect(page2.results.map((r: StoredResult) => r.identity)).toEqual(identities.slice(10, 20));
    expect(page2.next_cursor).toBeNull();
    const silent = await (await http.request(`/v1/jobs/${job.id}?status=no_reply,failed`, as(CALLER))).json();
    expect(silent.results.map((r: StoredResult) => r.identity)).toEqual(identities.slice(20));
  });

  it("refuses query parameters it does not understand", async () => {
    const { job, http } = await setup();
    for (const query of ["status=fine", "limit=0", "limit=1001", "limit=ten", "cursor=abc"]) {
      const response = await http.request(`/v1/jobs/${job.id}?${query}`, as(CALLER));
      expect(response.status, query).toBe(400);
      expect((await response.json()).type).toBe(`${PROBLEM_BASE}invalid-query`);
    }
  });
});

describe("GET /v1/jobs", () => {
  /** Jobs made one after another on a ManualClock, a minute apart: returns their ids oldest first. */
  async function manyJobs(store: JobStore, clock: ManualClock, jobs: Partial<NewJob>[]): Promise<string[]> {
    const ids: string[] = [];
    for (const [n, job] of jobs.entries()) {
      const outcome = await store.create(newJob({ request_id: `r${n}`, ...job }));
      if (outcome.outcome !== "created") throw new Error(outcome.outcome);
      ids.push(outcome.job.id);
      await clock.advance(60_000);
    }
    return ids;
  }

  async function listing(http: ReturnType<typeof app>, query: string, key = CALLER) {
    const response = await http.request(`/v1/jobs${query}`, as(key));
    expect(response.status, query).toBe(200);
    const body = (await response.json()) as { jobs: JobView[]; next_cursor: string | null };
    return { ...body, ids: body.jobs.map((job) => job.id), link: response.headers.get("link") };
  }

  it("lists the jobs a key may read, newest first, on pages that jobs made meanwhile do not shift", async () => {
    const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
    const store = new JobStore(new MemoryKvBucket(), { clock });
    const ids = await manyJobs(store, clock, [{}, {}, { caller: "key-other" }, {}, {}]);
    const http = app(store);
    const mine = [ids[4], ids[3], ids[1], ids[0]];

    const first = await listing(http, "?limit=2");
    expect(first.ids).toEqual(mine.slice(0, 2));
    expect(first.link).toBe(`</v1/jobs?limit=2&cursor=${first.next_cursor}>; rel="next"`);
    await manyJobs(store, clock, [{}]);
    const second = await listing(http, `?limit=2&cursor=${first.next_cursor}`);
    expect(second.ids).toEqual(mine.slice(2, 4));
    expect(second.next_cursor).toBeNull();
    expect(second.link).toBeNull();
    // The auditor's policy lets it read every job; another key sees none of these.
    expect((await listing(http, "", "key-auditor")).ids).toHaveLength(6);
    expect((await listing(http, "", "key-nobody")).ids).toEqual([]);
  });

  it("filters by state, trigger and creation time", async () => {
    const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
    const store = new JobStore(new MemoryKvBucket(), { clock });
    const ids = await manyJobs(store, clock, [
      { trigger: { trigger: "deploy", delivery_id: "d1" } },
      {},
      { trigger: { trigger: "other", delivery_id: "d2" } },
    ]);
    await endJob(store, ids[1] ?? "", "cancel");
    const http = app(store, { now: () => clock.now() });
    expect((await listing(http, "?state=cancelled")).ids).toEqual([ids[1]]);
    expect((await listing(http, "?state=running,complete")).ids).toEqual([ids[2], ids[0]]);
    expect((await listing(http, "?trigger=deploy")).ids).toEqual([ids[0]]);
    expect((await listing(http, "?since=2026-03-01T10:01:00Z")).ids).toEqual([ids[2], ids[1]]);
    // Three jobs a minute apart, then the clock moved a minute on: 90 s back reaches the last one only.
    expect((await listing(http, "?since=90s")).ids).toEqual([ids[2]]);
  });

  it("refuses parameters it does not understand, and callers without a key", async () => {
    const { http } = await setup();
    for (const query of [
      "state=done",
      "limit=0",
      "limit=501",
      "cursor=abc",
      "since=yesterday",
      "since=2026-13-45T00:00:00Z",
      "trigger=",
      "status=ok",
    ]) {
      const response = await http.request(`/v1/jobs?${query}`, as(CALLER));
      expect(response.status, query).toBe(400);
      expect((await response.json()).type).toBe(`${PROBLEM_BASE}invalid-query`);
    }
    const response = await http.request("/v1/jobs");
    expect(response.status).toBe(401);
  });
});

describe("GET /v1/jobs/:id/events", () => {
  it("streams results as they come and ends with the summary; Last-Event-ID resumes after it", async () => {
    const { store, job, http } = await setup();
    await store.putResult(job.id, ok("a"));
    const response = await http.request(`/v1/jobs/${job.id}/events`, as(CALLER));
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const reading = readAll(response);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await store.putResult(job.id, ok("b"));
    await endJob(store, job.id, "deadline");
    const seen = frames(await reading);
    expect(seen.map((f) => f.event)).toEqual(["result", "result", "result", "end"]);
    expect(seen.slice(0, 3).map((f) => JSON.parse(f.data!).identity)).toEqual(["a", "b", "c"]);
    expect(JSON.parse(seen[3]!.data!)).toMatchObject({
      id: job.id,
      state: "timed_out",
      counts: { no_reply: 1 },
    });
    expect(seen[3]!.id).toBe("end");

    const resumed = frames(
      await readAll(
        await http.request(`/v1/jobs/${job.id}/events`, as(CALLER, { "last-event-id": seen[0]!.id! })),
      ),
    );
    expect(resumed.map((f) => f.id)).toEqual([seen[1]!.id, seen[2]!.id, "end"]);
    const afterEnd = await http.request(`/v1/jobs/${job.id}/events`, as(CALLER, { "last-event-id": "end" }));
    expect(afterEnd.status).toBe(204);
  });

  it("stops watching when the client goes away", async () => {
    const bucket = new WatchCountingBucket();
    const store = new JobStore(bucket);
    const outcome = await store.create(newJob({ request_id: "r1", targets: ["a"] }));
    const job = (outcome as { job: JobRecord }).job;
    const response = await app(store).request(`/v1/jobs/${job.id}/events`, as(CALLER));
    const reader = response.body!.getReader();
    await waitFor(() => bucket.watching === 1);
    await reader.cancel();
    await waitFor(() => bucket.watching === 0);
    expect(bucket.watching).toBe(0);
  });

  it("sends keep-alive comments while nothing happens", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const outcome = await store.create(newJob({ request_id: "r1", targets: ["a"] }));
    const job = (outcome as { job: JobRecord }).job;
    const http = app(store, { heartbeatMs: 10 });
    const response = await http.request(`/v1/jobs/${job.id}/events`, as(CALLER));
    const reader = response.body!.getReader();
    const { value } = await reader.read();
    await reader.cancel();
    expect(new TextDecoder().decode(value)).toBe(": keep-alive\n\n");
  });
});

describe("DELETE /v1/jobs/:id", () => {
  it("cancels: stops waiting and marks the nodes still out, once", async () => {
    const { store, job, http } = await setup();
    await store.putResult(job.id, ok("a"));
    const response = await http.request(`/v1/jobs/${job.id}`, { method: "DELETE", ...as(CALLER) });
    expect(response.status).toBe(200);
    expect((await response.json()).job).toMatchObject({ state: "cancelled", counts: { ok: 1, no_reply: 2 } });
    const again = await http.request(`/v1/jobs/${job.id}`, { method: "DELETE", ...as(CALLER) });
    expect((await again.json()).job.state).toBe("cancelled");
  });
});
