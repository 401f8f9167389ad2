import { describe, expect, it } from "vitest";
import { parseRpcBody } from "../../../lib/gateway/schema.ts";

const base = { agent: "rpcutil", action: "ping", cluster: "C1" };

function errorsOf(body: unknown) {
  const parsed = parseRpcBody(body);
  if (parsed.ok) throw new Error("expected a refusal");
  return parsed.errors;
}

describe("parseRpcBody", () => {
  it("fills Choria's defaults: empty data, discovery with 2 s, a 10 s timeout, sync mode", () => {
    const parsed = parseRpcBody(base);
    expect(parsed).toEqual({
      ok: true,
      intent: {
        agent: "rpcutil",
        action: "ping",
        data: {},
        cluster: "C1",
        collective: undefined,
        filter: { fact: [], cf_class: [], agent: [], identity: [], compound: [] },
        nodes: undefined,
        limit: undefined,
        limitMethod: "first",
        timeoutMs: 10_000,
        discoveryTimeoutMs: 2000,
        idleMs: undefined,
        expect: undefined,
        mode: "sync",
      },
    });
  });

  it("turns the body's filter into Choria's: class → cf_class, fact strings parsed, compound wrapped", () => {
    const parsed = parseRpcBody({
      ...base,
      filter: {
        identity: ["node1", "/^web/"],
        class: ["role::web"],
        fact: ["country=nl", "memory>=4", { fact: "os", operator: "=~", value: "deb" }],
        agent: ["demo"],
        compound: "with('country=nl') and fact('index') < 10",
      },
      limit: "10%",
      timeout: 1.5,
      idle_timeout: 0.25,
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    expect(parsed.intent.filter).toEqual({
      identity: ["node1", "/^web/"],
      cf_class: ["role::web"],
      fact: [
        { fact: "country", operator: "==", value: "nl" },
        { fact: "memory", operator: ">=", value: "4" },
        { fact: "os", operator: "=~", value: "deb" },
      ],
      agent: ["demo"],
      compound: [[{ expr: "with('country=nl') and fact('index') < 10" }]],
    });
    expect(parsed.intent.limit).toEqual({ kind: "percent", percent: 10 });
    expect(parsed.intent.timeoutMs).toBe(1500);
    expect(parsed.intent.idleMs).toBe(250);
  });

  it("names the field path of every problem, as a dotted path and a JSON pointer", () => {
    const errors = errorsOf({
      ...base,
      filter: { fact: ["country=nl", { fact: "os", operator: "~~", value: "x" }] },
    });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ field: "filter.fact.1.operator", pointer: "/filter/fact/1/operator" });
  });

  it("refuses missing and unknown fields, wrong types and unsafe subject tokens", () => {
    expect(errorsOf({ agent: "rpcutil", action: "ping" }).map((e) => e.field)).toEqual(["cluster"]);
    expect(errorsOf({ ...base, filters: {} })[0]).toMatchObject({
      field: "",
      detail: expect.stringContaining("filters"),
    });
    expect(errorsOf({ ...base, agent: "rpc.util" })[0]!.field).toBe("agent");
    expect(errorsOf({ ...base, collective: "a>" })[0]!.field).toBe("collective");
    expect(errorsOf({ ...base, nodes: ["node1", "web.*"] })[0]!.field).toBe("nodes.1");
    expect(errorsOf({ ...base, data: [] })[0]!.field).toBe("data");
    expect(errorsOf({ ...base, timeout: 0 })[0]!.field).toBe("timeout");
    expect(errorsOf({ ...base, expect: 1.5 })[0]!.field).toBe("expect");
    expect(errorsOf({ ...base, mode: "later" })[0]!.field).toBe("mode");
    expect(
      errorsOf({ ...base, callback: { kind: "url", url: "https://hooks.example.com/" } })[0]!.field,
    ).toBe("callback");
  });

  it("refuses fact filters and regexes a node could not evaluate, with the body's field names", () => {
    expect(errorsOf({ ...base, filter: { fact: ["no operator"] } })[0]!.field).toBe("filter.fact.0");
    expect(errorsOf({ ...base, filter: { class: ["ok", "/(/"] } })[0]!.field).toBe("filter.class.1");
    expect(errorsOf({ ...base, filter: { identity: ["/[/"] } })[0]!.field).toBe("filter.identity.0");
    expect(errorsOf({ ...base, filter: { compound: "with('a') and (" } })[0]!.field).toBe("filter.compound");
  });

  it("refuses filter regexes that are not RE2 (Go's syntax, as the nodes run them), naming the field", () => {
    const refused = (filter: Record<string, unknown>) => errorsOf({ ...base, filter })[0]!;
    expect(refused({ identity: ["/(a)\\1/"] })).toMatchObject({
      field: "filter.identity.0",
      detail: expect.stringMatching(/not a valid RE2 regular expression/),
    });
    expect(refused({ class: ["/^(?=web)/"] }).field).toBe("filter.class.0");
    expect(refused({ agent: ["/(?<!x)y/"] }).field).toBe("filter.agent.0");
    expect(refused({ fact: ["os=~/(?!x)/"] }).field).toBe("filter.fact.0.value");
    expect(refused({ fact: [{ fact: "os", operator: "=~", value: "(a)\\1" }] }).field).toBe(
      "filter.fact.0.value",
    );
    expect(refused({ compound: "fact('os') matches '(?=x)'" }).field).toBe("filter.compound");
    expect(refused({ identity: [`/${"a".repeat(2000)}/`] }).field).toBe("filter.identity.0");
    // the regex from issue 12 is valid RE2: accepted, and linear-time on the nodes
    expect(parseRpcBody({ ...base, filter: { identity: ["/^(?:[a-z0-9.]|[a-z0-9.]){22}!/"] } }).ok).toBe(
      true,
    );
  });

  // Issue 12: what the gateway builds from `nodes` stays within the subject limits brokers and nodes hold
  // subjects to (512 characters, 64 tokens), so no caller input makes a broker refuse a packet of targets.
  it("refuses identities whose node subject would exceed the subject limits", () => {
    const labels = (n: number) => Array(n).fill("a").join(".");
    expect(errorsOf({ ...base, nodes: ["node1", labels(63)] })[0]).toMatchObject({ field: "nodes.1" });
    expect(errorsOf({ ...base, nodes: ["n".repeat(254)] })[0]).toMatchObject({ field: "nodes.0" });
    expect(errorsOf({ ...base, nodes: ["$a", "a..b", "a b"] }).map((e) => e.field)).toEqual([
      "nodes.1",
      "nodes.2",
    ]);
    const longest = parseRpcBody({
      ...base,
      collective: "c".repeat(128),
      nodes: [labels(62), "n".repeat(253)],
    });
    expect(longest.ok).toBe(true);
  });

  it("limits: N or N% up to 100, never zero; not in broadcast mode", () => {
    expect(errorsOf({ ...base, limit: 0 })[0]!.field).toBe("limit");
    expect(errorsOf({ ...base, limit: "0%" })[0]!.field).toBe("limit");
    expect(errorsOf({ ...base, limit: "150%" })[0]!.field).toBe("limit");
    expect(errorsOf({ ...base, limit: "x" })[0]!.field).toBe("limit");
    expect(errorsOf({ ...base, mode: "broadcast", limit: 3 })[0]!.field).toBe("limit");
    expect(errorsOf({ ...base, mode: "broadcast", nodes: ["a"] })[0]!.field).toBe("nodes");
  });
});
