import { describe, expect, it } from "vitest";
import {
  authorize,
  globMatch,
  type Policy,
  type PolicyIntent,
  policySchema,
} from "../../../../lib/security/http/mod.ts";

const policy: Policy = {
  clusters: ["eu-*"],
  collectives: ["mcollective", "ops_?"],
  agents: ["rpcutil", "demo"],
  actions: ["rpcutil#*", "demo#echo"],
};

const intent: PolicyIntent = {
  cluster: "eu-west",
  collective: "mcollective",
  agent: "rpcutil",
  action: "ping",
  filter: {},
  timeoutSeconds: 10,
  broadcast: false,
};

const allowed = (p: Policy, i: Partial<PolicyIntent> = {}) => authorize(p, { ...intent, ...i });
const detailOf = (decision: ReturnType<typeof authorize>) => (decision.ok ? "allowed" : decision.detail);

describe("globMatch", () => {
  it.each([
    ["*", "", true],
    ["*", "anything", true],
    ["rpcutil#*", "rpcutil#ping", true],
    ["rpcutil#*", "rpcutil#", true],
    ["rpcutil#*", "rpcutilx#ping", false],
    ["?", "a", true],
    ["?", "", false],
    ["?", "ab", false],
    ["a*b*c", "axxbyyc", true],
    ["a*b*c", "axxbyy", false],
    ["*.example.*", "node1.example.net", true],
    ["demo#echo", "demo#echo", true],
    ["demo#echo", "demo#echoes", false],
    ["demo#ech?", "demo#echo", true],
    ["a.c", "abc", false],
    ["[ab]", "a", false],
    ["[ab]", "[ab]", true],
    ["**", "x", true],
    ["*a", "banana", true],
    ["*an", "banana", false],
  ])("%j against %j is %s", (glob, value, expected) => {
    expect(globMatch(glob, value)).toBe(expected);
  });

  it("stays fast on patterns that make naive backtracking explode", () => {
    expect(globMatch(`${"*a".repeat(30)}b`, "a".repeat(5000))).toBe(false);
  });
});

describe("authorize", () => {
  it("allows what every rule lets through", () => {
    expect(allowed(policy)).toEqual({ ok: true });
    expect(allowed(policy, { agent: "demo", action: "echo", collective: "ops_1" })).toEqual({ ok: true });
  });

  it("denies by default: an empty policy allows nothing", () => {
    const empty = policySchema.parse({});
    expect(empty).toEqual({ clusters: [], collectives: [], agents: [], actions: [] });
    expect(allowed(empty)).toMatchObject({ ok: false, problem: "forbidden" });
  });

  it.each<[string, Partial<PolicyIntent>, RegExp]>([
    ["cluster", { cluster: "us-east" }, /cluster us-east/],
    ["collective", { collective: "ops_12" }, /collective ops_12/],
    ["agent", { agent: "puppet" }, /agent puppet/],
    ["action of an allowed agent", { agent: "demo", action: "reverse" }, /action demo#reverse/],
  ])("names the rule that refused the %s", (_what, change, detail) => {
    expect(detailOf(allowed(policy, change))).toMatch(detail);
  });

  it("needs the agent in agents even when an action glob would match", () => {
    const loose = { ...policy, actions: ["*#*"] };
    expect(detailOf(allowed(loose, { agent: "puppet", action: "run" }))).toMatch(/agent puppet/);
  });

  it("limits nodes once they are known, and the timeout", () => {
    const limited = { ...policy, maxNodes: 10, maxTimeoutSeconds: 30 };
    expect(allowed(limited, { nodes: 10, timeoutSeconds: 30 })).toEqual({ ok: true });
    expect(allowed(limited, { nodes: undefined })).toEqual({ ok: true });
    expect(detailOf(allowed(limited, { nodes: 11 }))).toMatch(/maxNodes/);
    expect(detailOf(allowed(limited, { timeoutSeconds: 30.5 }))).toMatch(/maxTimeoutSeconds/);
  });

  it("holds the discovery timeout to maxTimeoutSeconds too, when there is a discovery", () => {
    const limited = { ...policy, maxTimeoutSeconds: 10 };
    expect(allowed(limited, { discoveryTimeoutSeconds: 10 })).toEqual({ ok: true });
    expect(allowed(limited, { discoveryTimeoutSeconds: undefined })).toEqual({ ok: true });
    expect(allowed(limited, { discoveryTimeoutSeconds: 60 })).toEqual({
      ok: false,
      problem: "forbidden",
      detail: "a discovery_timeout of 60s is over the key's maxTimeoutSeconds of 10",
    });
    expect(allowed(policy, { discoveryTimeoutSeconds: 60 })).toEqual({ ok: true });
  });

  it("refuses broadcast unless allowed, and always when maxNodes is set", () => {
    expect(detailOf(allowed(policy, { broadcast: true }))).toMatch(/allowBroadcast/);
    expect(allowed({ ...policy, allowBroadcast: true }, { broadcast: true })).toEqual({ ok: true });
    expect(detailOf(allowed({ ...policy, allowBroadcast: true, maxNodes: 5 }, { broadcast: true }))).toMatch(
      /maxNodes/,
    );
    expect(policySchema.safeParse({ ...policy, allowBroadcast: true, maxNodes: 5 }).success).toBe(false);
  });

  it("requireFilter: true wants an identity, fact, class or compound filter; an agent filter is not enough", () => {
    const strict = { ...policy, requireFilter: true };
    expect(detailOf(allowed(strict))).toMatch(/requires a filter/);
    expect(detailOf(allowed(strict, { filter: { agent: ["rpcutil"] } }))).toMatch(/requires a filter/);
    expect(detailOf(allowed(strict, { filter: { identity: [] } }))).toMatch(/requires a filter/);
    for (const filter of [
      { identity: ["node1"] },
      { fact: [{ fact: "country", operator: "==" as const, value: "nl" }] },
      { cf_class: ["webserver"] },
      { compound: [[{ expr: "with('x')" }]] },
    ])
      expect(allowed(strict, { filter })).toEqual({ ok: true });
  });

  it("requireFilter as a list wants a filter of one of the listed kinds", () => {
    const identityOrClass = { ...policy, requireFilter: ["identity" as const, "class" as const] };
    expect(allowed(identityOrClass, { filter: { cf_class: ["db"] } })).toEqual({ ok: true });
    expect(allowed(identityOrClass, { filter: { identity: ["n1"] } })).toEqual({ ok: true });
    const fact = { fact: [{ fact: "country", operator: "==" as const, value: "nl" }] };
    expect(detailOf(allowed(identityOrClass, { filter: fact }))).toMatch(/identity, class/);
    expect(allowed({ ...policy, requireFilter: ["agent"] }, { filter: { agent: ["x"] } })).toEqual({
      ok: true,
    });
    expect(allowed({ ...policy, requireFilter: false })).toEqual({ ok: true });
  });

  it("validates policies: action patterns are agent#action, limits are positive", () => {
    expect(policySchema.safeParse({ actions: ["echo"] }).success).toBe(false);
    expect(policySchema.safeParse({ actions: ["a#b#c"] }).success).toBe(false);
    expect(policySchema.safeParse({ maxNodes: 0 }).success).toBe(false);
    expect(policySchema.safeParse({ maxTimeoutSeconds: -1 }).success).toBe(false);
    expect(policySchema.safeParse({ requireFilter: [] }).success).toBe(false);
    expect(policySchema.safeParse({ requireFilter: ["host"] }).success).toBe(false);
    expect(policySchema.safeParse({ agent: ["typo"] }).success).toBe(false);
    expect(policySchema.safeParse({ ...policy, requireFilter: ["fact"], maxNodes: 5 }).success).toBe(true);
  });
});

describe("callback targets a request may name", () => {
  const url = (u: string) => ({ callback: { kind: "url" as const, url: u } });
  const lambda = (functionName: string, region?: string) => ({
    callback: { kind: "lambda" as const, functionName, ...(region === undefined ? {} : { region }) },
  });

  it("are denied by default: a policy without callback entries allows no callback", () => {
    expect(detailOf(allowed(policy, url("https://hooks.example.com/ci")))).toMatch(/callbackUrls/);
    expect(detailOf(allowed(policy, lambda("job-done")))).toMatch(/callbackLambdas/);
    expect(allowed(policy).ok).toBe(true);
  });

  it("URLs: the same scheme, host and port, under the prefix's path on a segment boundary", () => {
    const p: Policy = {
      ...policy,
      callbackUrls: ["https://hooks.example.com/ci/", "https://x.example.com/a"],
    };
    for (const ok of [
      "https://hooks.example.com/ci/",
      "https://hooks.example.com/ci/done?job=1",
      "https://HOOKS.example.com:443/ci/x",
      "https://x.example.com/a",
      "https://x.example.com/a/b",
    ])
      expect(allowed(p, url(ok)), ok).toEqual({ ok: true });
    for (const refused of [
      "http://hooks.example.com/ci/",
      "https://hooks.example.com/cid",
      "https://hooks.example.com/",
      "https://hooks.example.com:8443/ci/",
      "https://hooks.example.com.evil.net/ci/",
      "https://hooks.example.com@127.0.0.1/ci/",
      "https://user:pw@hooks.example.com/ci/",
      "https://x.example.com/ab",
      "https://x.example.com/a/../../admin",
      "http://127.0.0.1:4222/",
      "http://[::1]:8222/varz",
    ])
      expect(allowed(p, url(refused)).ok, refused).toBe(false);
  });

  it("Lambda functions: the name or ARN as written, globs allowed; another region only by a full ARN", () => {
    const p: Policy = {
      ...policy,
      callbackLambdas: ["job-done", "arn:aws:lambda:eu-west-1:123456789012:function:ci-*"],
    };
    expect(allowed(p, lambda("job-done"))).toEqual({ ok: true });
    expect(allowed(p, lambda("arn:aws:lambda:eu-west-1:123456789012:function:ci-report"))).toEqual({
      ok: true,
    });
    expect(
      allowed(p, lambda("arn:aws:lambda:eu-west-1:123456789012:function:ci-report", "eu-west-1")),
    ).toEqual({ ok: true });
    expect(allowed(p, lambda("job-done", "us-east-1")).ok).toBe(false);
    expect(allowed(p, lambda("job-done-2")).ok).toBe(false);
    expect(allowed(p, lambda("999999999999:function:job-done")).ok).toBe(false);
    expect(
      allowed(p, lambda("arn:aws:lambda:eu-west-1:123456789012:function:ci-report", "us-east-1")).ok,
    ).toBe(false);
  });

  it("validates entries: URL prefixes are http(s) URLs without credentials, query or fragment", () => {
    expect(policySchema.safeParse({ callbackUrls: ["https://hooks.example.com/"] }).success).toBe(true);
    for (const bad of [
      "hooks.example.com",
      "ftp://x/",
      "https://u:p@x/",
      "https://x/?a=1",
      "https://x/#f",
      "",
    ])
      expect(policySchema.safeParse({ callbackUrls: [bad] }).success, bad).toBe(false);
    expect(policySchema.safeParse({ callbackLambdas: [""] }).success).toBe(false);
  });
});
