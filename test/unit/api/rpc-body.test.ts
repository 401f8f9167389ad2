import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { commonRpcBody, rpcRequestBodySchema } from "../../../lib/api/mod.ts";
import { IDENTITY_MAX_TOKENS } from "../../../lib/protocol/mod.ts";

const base = { agent: "rpcutil", action: "ping", cluster: "C1" };

// Values near every check's edge, and of every JSON type, for any key a body may carry.
const odd = fc.constantFrom<unknown>(
  "",
  "x",
  "a.b",
  "a..b",
  "a*",
  "x".repeat(129),
  [Array.from({ length: IDENTITY_MAX_TOKENS }, () => "a").join(".")],
  [Array.from({ length: IDENTITY_MAX_TOKENS + 1 }, () => "a").join(".")],
  0,
  1,
  0.5,
  -1,
  2,
  3600,
  3601,
  1_000_000,
  1_000_001,
  2 ** 53,
  true,
  null,
  {},
  { a: 1 },
  [],
  ["n1"],
  ["n1", ""],
  "sync",
  "broadcast",
  "async",
  "first",
  "random",
  "10%",
);
// Every key the schema knows, and one it does not.
const KEYS = [...Object.keys(rpcRequestBodySchema._zod.def.shape), "extra"];
const bodies = fc
  .array(fc.tuple(fc.constantFrom(...KEYS), fc.oneof(odd, fc.constant(undefined))), { maxLength: 4 })
  .map((changes) => {
    const body: Record<string, unknown> = { ...base };
    for (const [key, value] of changes) {
      if (value === undefined) delete body[key];
      else body[key] = value;
    }
    return body;
  });

describe("commonRpcBody", () => {
  it("accepts only what the schema accepts, with the schema's output", () => {
    let taken = 0;
    fc.assert(
      fc.property(fc.oneof(bodies, odd), (body) => {
        const fast = commonRpcBody(body);
        if (fast === undefined) return;
        taken++;
        const parsed = rpcRequestBodySchema.safeParse(body);
        expect(parsed.success).toBe(true);
        if (parsed.success) expect(fast).toStrictEqual(parsed.data);
      }),
      { numRuns: 5000 },
    );
    expect(taken).toBeGreaterThan(500);
  });

  it("takes the usual gateway call, and leaves filters, limits, callbacks and odd data to the schema", () => {
    expect(commonRpcBody({ ...base, nodes: ["n1.example.net"], timeout: 5 })).toMatchObject({
      nodes: ["n1.example.net"],
      timeout: 5,
      discovery_timeout: 2,
      mode: "sync",
    });
    expect(commonRpcBody({ ...base, filter: { identity: ["n1"] } })).toBeUndefined();
    expect(commonRpcBody({ ...base, limit: 1 })).toBeUndefined();
    expect(commonRpcBody({ ...base, mode: "broadcast", nodes: ["n1"] })).toBeUndefined();
    expect(
      commonRpcBody(JSON.parse(`{"agent":"a","action":"b","cluster":"c","data":{"__proto__":{}}}`)),
    ).toBeUndefined();
  });
});
