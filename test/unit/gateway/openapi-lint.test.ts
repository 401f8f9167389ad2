// The OpenAPI document against a maintained linter's recommended rules (Redocly's), and the job answers
// the API really gives against the schemas the document states for them.
import { createConfig, lintFromString } from "@redocly/openapi-core";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { openApiDocument } from "../../../lib/gateway/openapi.ts";
import { type JobRecord, jobView } from "../../../lib/results/jobs/mod.ts";

const doc = openApiDocument("1.0.0");

describe("the OpenAPI document", () => {
  it("passes Redocly's recommended rules with no error or warning", async () => {
    const config = await createConfig({ extends: ["recommended"] });
    const problems = await lintFromString({
      source: JSON.stringify(doc),
      absoluteRef: "/v1/openapi.json",
      config,
    });
    expect(problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer ?? ""}: ${p.message}`)).toEqual([]);
  });

  it("gives every operation a security requirement and an example", () => {
    const paths = doc.paths as Record<string, Record<string, Record<string, unknown>>>;
    for (const [path, operations] of Object.entries(paths))
      for (const [method, operation] of Object.entries(operations)) {
        expect(operation.security, `${method} ${path}`).toBeInstanceOf(Array);
        expect(JSON.stringify(operation), `${method} ${path}`).toMatch(/"example"/);
      }
  });
});

describe("the job schemas", () => {
  it("describe the job the API shows, conflicts and results' hash included", () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema({ $id: "doc", components: doc.components });
    const record = {
      id: "01JC7Z3Q8J6V1M5X4W2N9K0B7A",
      request_id: "r",
      caller: "ops",
      cluster: "dc1",
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
      created_at: "2026-01-05T10:00:00.000Z",
      deadline_at: "2026-01-05T10:00:10.000Z",
      expected: 2,
      targets: 2,
      first_seq: 1,
      state: "complete",
      counts: { ok: 1, failed: 0, no_reply: 0, unexpected: 0, conflicts: 1 },
      conflicting: ["web2"],
      finished_at: "2026-01-05T10:00:01.000Z",
      settled: true,
      settled_seq: 4,
      max_data_bytes: 16384,
      callback: {
        target: { kind: "url", url: "https://hooks.example.com/done" },
        status: "delivered",
        attempts: [{ attempt: 1, at: "2026-01-05T10:00:02.000Z", duration_ms: 12, ok: true }],
        next_attempt_at: null,
        lease_until: null,
        delivered_at: "2026-01-05T10:00:02.000Z",
      },
      trigger: null,
      effects: null,
    } as unknown as JobRecord;
    const result = {
      identity: "web1",
      status: "ok",
      statuscode: 0,
      statusmsg: "OK",
      data: {},
      received_at: "2026-01-05T10:00:00.500Z",
      hash: "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
      seq: 3,
    };
    const page = { job: jobView(record), results: [result], next_cursor: "3" };
    const validate = ajv.getSchema("doc#/components/schemas/JobPage");
    expect(validate?.(page), JSON.stringify(validate?.errors)).toBe(true);
    const withoutConflicts = {
      ...page,
      job: { ...page.job, counts: { ...page.job.counts, conflicts: undefined } },
    };
    expect(validate?.(JSON.parse(JSON.stringify(withoutConflicts)))).toBe(false);
  });
});
