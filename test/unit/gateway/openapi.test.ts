import { describe, expect, it } from "vitest";
import { jobRoutes } from "../../../lib/gateway/jobs.ts";
import { openApiDocument } from "../../../lib/gateway/openapi.ts";
import { PROBLEMS, problemType } from "../../../lib/gateway/problems.ts";
import type { JobStore } from "../../../lib/results/jobs/mod.ts";

type Operation = { responses: Record<string, { description?: string }> };

/** The problem type URIs the document names in an operation's responses. */
function documentedTypes(doc: Record<string, unknown>, path?: string): string {
  const paths = doc.paths as Record<string, Record<string, Operation>>;
  const operations = Object.entries(paths)
    .filter(([p]) => path === undefined || p === path)
    .flatMap(([, ops]) => Object.values(ops));
  return operations.flatMap((op) => Object.values(op.responses).map((r) => r.description ?? "")).join("\n");
}

describe("the OpenAPI document", () => {
  const doc = openApiDocument("test");

  it("names every problem type of the catalogue in the responses of an operation that returns it", () => {
    const described = documentedTypes(doc);
    const missing = Object.keys(PROBLEMS)
      .map((kind) => problemType(kind as keyof typeof PROBLEMS))
      .filter((type) => !described.includes(type));
    expect(missing).toEqual([]);
  });

  it("documents the problem the /v1/jobs routes answer a bad query with", async () => {
    const routes = jobRoutes({
      store: {} as JobStore,
      callerKeyId: () => "k",
      authorize: () => true,
    });
    const response = await routes.request("/v1/jobs/x?limit=0");
    const { type } = (await response.json()) as { type: string };
    expect(Object.keys(PROBLEMS).map((kind) => problemType(kind as keyof typeof PROBLEMS))).toContain(type);
    expect(documentedTypes(doc, "/v1/jobs/{id}")).toContain(type);
  });
});
