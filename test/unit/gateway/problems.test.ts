import { describe, expect, it } from "vitest";
import {
  fieldError,
  invalidBody,
  PROBLEM_BASE,
  PROBLEMS,
  problem,
  problemResponse,
} from "../../../lib/gateway/problems.ts";

describe("problem documents", () => {
  it("every kind has a stable type URI under one base, a title and an HTTP error status", () => {
    for (const [kind, { status, title }] of Object.entries(PROBLEMS)) {
      const doc = problem(kind as keyof typeof PROBLEMS, "why");
      expect(doc).toEqual({ type: `${PROBLEM_BASE}${kind}`, title, status, detail: "why" });
      expect(status).toBeGreaterThanOrEqual(400);
      expect(kind).toMatch(/^[a-z-]+$/);
    }
  });

  it("the kinds the API promises exist with their statuses", () => {
    expect(PROBLEMS["bad-signature"].status).toBe(401);
    expect(PROBLEMS.stale.status).toBe(401);
    expect(PROBLEMS.replay.status).toBe(401);
    expect(PROBLEMS.forbidden.status).toBe(403);
    expect(PROBLEMS["invalid-body"].status).toBe(400);
    expect(PROBLEMS["unknown-cluster"].status).toBe(404);
    expect(PROBLEMS["upstream-unavailable"].status).toBe(503);
    expect(PROBLEMS.timeout.status).toBe(504);
    expect(PROBLEMS["payload-too-large"].status).toBe(413);
    expect(PROBLEMS["not-found"].status).toBe(404);
    expect(PROBLEMS["method-not-allowed"].status).toBe(405);
  });

  it("extensions cannot overwrite the standard members", () => {
    const doc = problem("forbidden", "no", { type: "x", status: 200, extra: 1 });
    expect(doc).toMatchObject({ type: `${PROBLEM_BASE}forbidden`, status: 403, extra: 1 });
  });

  it("field errors escape JSON pointer tokens per RFC 6901", () => {
    expect(fieldError(["data", "a/b", "c~d", 0], "bad")).toEqual({
      field: "data.a/b.c~d.0",
      pointer: "/data/a~1b/c~0d/0",
      detail: "bad",
    });
    expect(fieldError([], "not JSON").pointer).toBe("");
  });

  it("invalid-body names the first field in its detail and lists all of them", () => {
    const doc = invalidBody([fieldError(["timeout"], "too big"), fieldError(["agent"], "missing")]);
    expect(doc.detail).toBe("timeout: too big");
    expect(doc.errors).toHaveLength(2);
  });

  it("responses use application/problem+json and carry extra headers", async () => {
    const res = problemResponse(problem("upstream-unavailable", "down"), { "retry-after": "1" });
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toMatchObject({ detail: "down" });
  });
});
