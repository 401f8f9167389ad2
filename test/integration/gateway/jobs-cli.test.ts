// `choria-edge jobs` and GET /v1/jobs against a real Node gateway, collector and nats-server: jobs made by
// signed async requests are listed (only those the key may read), shown, followed and cancelled.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runJobs } from "../../../cli/jobs.ts";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import {
  generateHttpKey,
  type Policy,
  type SigningKey,
  signHttpRequest,
} from "../../../lib/security/http/mod.ts";
import { captureIo } from "../../support/cli-io.ts";
import { collectorConfig, memoryLog } from "../results/support.ts";
import { CLUSTER, type Federation, gatewaySettings, startFederation } from "./support.ts";

const NODES = 3;
const everything: Policy = { clusters: [CLUSTER], collectives: ["*"], agents: ["*"], actions: ["*#*"] };

let federation: Federation;
let collector: RunningCollector;
let gateway: RunningGateway;
let dir: string;
/** Key files: `ops` makes the jobs, `other` makes one of its own and may read no one else's. */
const keyFile: Record<"ops" | "other", string> = { ops: "", other: "" };
const signing = new Map<string, SigningKey>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "jobs-cli-"));
  // No local stack's defaults: every command here names its gateway and key.
  process.env.CHORIA_EDGE_HOME = dir;
  federation = await startFederation(NODES, { jetstream: true });
  const made = await Promise.all(
    (["ops", "other"] as const).map((id) =>
      generateHttpKey({ id, caller: id, scheme: "ed25519", policy: everything }),
    ),
  );
  for (const [n, id] of (["ops", "other"] as const).entries()) {
    keyFile[id] = join(dir, `${id}.json`);
    await writeFile(keyFile[id], JSON.stringify(made[n]?.keyFile));
    signing.set(id, { id, scheme: "ed25519", privateKey: made[n]?.keyFile.privateKey ?? "" });
  }
  const keysJson = JSON.stringify({ keys: made.map((key) => key.config) });
  collector = await startCollector(collectorConfig(federation.federation), { log: memoryLog() });
  gateway = await startGateway(
    { ...(await gatewaySettings(federation.federation.url, keysJson)), jobs: true },
    { log: () => {}, audit: () => {} },
  );
});

afterAll(async () => {
  await gateway?.close();
  await collector?.stop();
  await federation?.stop();
  await rm(dir, { recursive: true, force: true });
});

const identities = () => federation.fleet.map((node) => node.identity).sort();

async function jobs(args: string[], key: "ops" | "other" = "ops", isTTY = false) {
  const output = captureIo(isTTY);
  const code = await runJobs([...args, "--gateway", gateway.url, "--key", keyFile[key]], output.io);
  return { code, stdout: output.stdout(), stderr: output.stderr() };
}

function signingKey(id: string): SigningKey {
  const key = signing.get(id);
  if (key === undefined) throw new Error(`no key ${id}`);
  return key;
}

/** A signed async request; its job id. */
async function startJob(nodes: string[], timeout: number, key: "ops" | "other" = "ops"): Promise<string> {
  const url = `${gateway.url}/v1/rpc`;
  const body = JSON.stringify({
    cluster: CLUSTER,
    agent: "rpcutil",
    action: "ping",
    nodes,
    timeout,
    mode: "async",
  });
  const headers = await signHttpRequest({
    method: "POST",
    url,
    headers: { "content-type": "application/json" },
    body,
    key: signingKey(key),
  });
  const response = await fetch(url, { method: "POST", headers, body });
  expect(response.status).toBe(202);
  return ((await response.json()) as { job_id: string }).job_id;
}

describe("choria-edge jobs against a real gateway", () => {
  it("lists the key's jobs newest first, pages them, and leaves out other keys' jobs", async () => {
    const first = await startJob(identities(), 10);
    const theirs = await startJob(identities(), 10, "other");
    const second = await startJob(identities(), 10);

    const listed = await jobs(["list", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    const page = JSON.parse(listed.stdout) as { jobs: { id: string }[]; next_cursor: string | null };
    const ids = page.jobs.map((job) => job.id);
    expect(ids.indexOf(second)).toBeLessThan(ids.indexOf(first));
    expect(ids).not.toContain(theirs);

    const table = await jobs(["list", "--limit", "1"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^id\s+state\s+action\s+trigger\s+ok\s+failed\s+no_reply\s+waiting\s+age\n/);
    expect(table.stdout).toContain(`${second}  `);
    expect(table.stdout).toContain("rpcutil#ping");
    const more = /--cursor (\d+)/.exec(table.stderr)?.[1];
    expect(more).toBeDefined();
    const next = await jobs(["list", "--limit", "1", "--cursor", more ?? "", "--json"]);
    expect((JSON.parse(next.stdout) as { jobs: { id: string }[] }).jobs[0]?.id).toBe(first);

    const bad = await jobs(["list", "--state", "finished"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("400 Invalid query parameters: state:");
  });

  it("watches a job to its end with a progress line, then shows it with get", async () => {
    const id = await startJob(identities(), 10);
    const watched = await jobs(["watch", id], "ops", true);
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stderr).toContain("\r\x1b[Kresults ");
    expect(watched.stdout).toContain("state     complete");
    for (const identity of identities()) expect(watched.stdout).toContain(identity);
    expect(watched.stdout).toContain(`${NODES} replies: ok ${NODES}, failed 0, no reply 0`);

    const shown = await jobs(["get", id, "--json"]);
    expect(shown.code).toBe(0);
    const answer = JSON.parse(shown.stdout) as { job: { state: string }; results: { identity: string }[] };
    expect(answer.job.state).toBe("complete");
    expect(answer.results.map((r) => r.identity).sort()).toEqual(identities());

    const refused = await jobs(["get", id], "other");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("403");
  });

  it("exits 1 from watch when nodes stay silent, and cancel ends a job that waits for them", async () => {
    const timedOut = await startJob([...identities(), "ghost.example.net"], 2);
    const watched = await jobs(["watch", timedOut]);
    expect(watched.code).toBe(1);
    expect(watched.stdout).toContain("state     timed_out");
    expect(watched.stdout).toMatch(/ghost\.example\.net\s+no reply/);

    const waiting = await startJob([...identities(), "ghost.example.net"], 60);
    const cancelled = await jobs(["cancel", waiting]);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toContain("state     cancelled");
    const listed = await jobs(["list", "--state", "cancelled", "--json"]);
    expect((JSON.parse(listed.stdout) as { jobs: { id: string }[] }).jobs.map((job) => job.id)).toEqual([
      waiting,
    ]);
  });

  it("answers an unknown list parameter with the invalid-query problem", async () => {
    const url = `${gateway.url}/v1/jobs?states=running`;
    const headers = await signHttpRequest({
      method: "GET",
      url,
      headers: {},
      key: signingKey("ops"),
    });
    const response = await fetch(url, { headers });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}invalid-query`);
  });
});

describe("choria-edge jobs watch on a stream that breaks off", () => {
  it("opens it again with Last-Event-ID and goes on after the last result it saw", async () => {
    const frame = (id: string, event: string, data: unknown) =>
      `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    const result = (identity: string) => ({
      identity,
      status: "ok",
      statuscode: 0,
      statusmsg: "OK",
      data: {},
    });
    const resumedFrom: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      resumedFrom.push(req.headers["last-event-id"] as string | undefined);
      res.writeHead(200, { "content-type": "text/event-stream" });
      if (resumedFrom.length === 1) {
        res.write(frame("5", "result", result("a.example.net")));
        // The connection drops before the job ends.
        setTimeout(() => res.destroy(), 50);
        return;
      }
      res.write(frame("7", "result", result("b.example.net")));
      const job = {
        id: "j",
        state: "complete",
        agent: "rpcutil",
        action: "ping",
        created_at: new Date().toISOString(),
        expected: 2,
        counts: { ok: 2, failed: 0, no_reply: 0, unexpected: 0, outstanding: 0 },
        trigger: null,
      };
      res.end(frame("end", "end", job));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const output = captureIo();
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const code = await runJobs(["watch", "j", "--gateway", url, "--key", keyFile.ops], output.io);
      expect(code, output.stderr()).toBe(0);
      expect(resumedFrom).toEqual([undefined, "5"]);
      expect(output.stdout()).toMatch(/a\.example\.net[\s\S]*b\.example\.net/);
      expect(output.stdout()).toContain("2 replies: ok 2, failed 0, no reply 0");
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
