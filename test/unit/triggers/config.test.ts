// biome-ignore-all lint/suspicious/noTemplateCurlyInString: trigger templates are written ${inputs.NAME}
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type Trigger, type TriggerConfigError, triggerSecrets } from "../../../lib/triggers/mod.ts";
import { parseTriggerFile } from "../../../lib/triggers/node.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../../fixtures/triggers/${name}`, import.meta.url), "utf8");

function loaded(text: string, filename?: string): Trigger[] {
  const result = parseTriggerFile(text, filename ? { filename } : {});
  if (!result.ok) throw new Error(result.message);
  return result.triggers.names().map((name) => result.triggers.get(name) as Trigger);
}

function errorsOf(text: string): TriggerConfigError[] {
  const result = parseTriggerFile(text, { filename: "triggers.yaml" });
  if (result.ok) throw new Error("expected the file to be refused");
  return result.errors;
}

// A valid trigger; tests replace one line to break it.
const VALID = `triggers:
  - name: deploy
    verify:
      scheme: github
      secrets_env: [HOOK_SECRET]
    policy:
      agents: [puppet]
      actions: ["puppet#runonce"]
    when:
      - path: ref
        equals: refs/heads/main
    inputs:
      branch:
        from: payload.ref
        pattern: "^refs/heads/"
    request:
      cluster: mcollective
      agent: puppet
      action: runonce
      data: { tags: "\${inputs.branch}" }
`;

function withLine(lineNumber: number, replacement: string): string {
  const lines = VALID.split("\n");
  lines[lineNumber - 1] = replacement;
  return lines.join("\n");
}

describe("parseTriggerFile: the fixtures", () => {
  it("loads the GitHub push trigger with its defaults and compiled parts", () => {
    const [trigger] = loaded(fixture("github-push.yaml"), "github-push.yaml");
    expect(trigger?.name).toBe("deploy-on-push");
    expect(trigger?.verify).toEqual({
      scheme: "github",
      secretsEnv: ["GITHUB_HOOK_SECRET", "GITHUB_HOOK_SECRET_OLD"],
      publicKeysEnv: [],
      keys: [],
    });
    expect(trigger?.caller).toBe("github");
    expect(trigger?.callerId).toBe("choria=github.mcollective");
    expect(trigger?.policy.actions).toEqual(["puppet#runonce"]);
    expect(trigger?.conditions).toHaveLength(4);
    expect(trigger?.inputs.map((input) => input.name)).toEqual([
      "branch",
      "sha",
      "event",
      "environment",
      "commits",
    ]);
    expect(trigger?.inputs[0]?.pattern?.source).toBe("^refs/heads/[A-Za-z0-9._/-]+$");
    expect(trigger?.inputs[0]?.pattern?.test("refs/heads/main")).toBe(true);
    expect(trigger?.inputs[0]?.shellsafe).toBe(true);
    expect(trigger?.inputs[3]?.source).toEqual({ kind: "data", key: "deploy/env" });
    expect(trigger?.inputs[2]?.source).toEqual({ kind: "header", name: "x-github-event" });
    expect(trigger?.locks).toEqual(["deploy", "deploy-${inputs.environment}"]);
    expect(trigger?.lockTimeoutMs).toBe(5000);
    expect(trigger?.respond).toBeUndefined();
    expect(trigger?.onComplete).toEqual([
      { op: "put", key: "deploy/last-sha", value: "${inputs.sha}", whenState: ["complete"] },
      { op: "delete", key: "deploy/pending" },
    ]);
  });

  it("loads the Stripe trigger: default caller, custom response, fractional lock timeout", () => {
    const [trigger] = loaded(fixture("stripe-payment.yaml"));
    expect(trigger?.caller).toBe("hook:stripe-paid");
    expect(trigger?.callerId).toBe("choria=hook-stripe-paid.mcollective");
    expect(trigger?.respond).toEqual({ status: 200, body: { received: true } });
    expect(trigger?.lockTimeoutMs).toBe(2500);
    expect(trigger?.inputs.find((input) => input.name === "customer")?.type).toBe("string");
    expect(trigger?.conditions[2]?.kind).toBe("not");
  });

  it("loads the Slack trigger with no locks", () => {
    const [trigger] = loaded(fixture("slack-command.yaml"));
    expect(trigger?.locks).toEqual([]);
    expect(trigger?.request.filter).toEqual({ fact: ["environment=staging"], class: ["role::web"] });
  });

  it("loads JSON as well as YAML", () => {
    const [trigger] = loaded(fixture("standard.json"), "standard.json");
    expect(trigger?.verify.scheme).toBe("standard-webhooks");
    expect(trigger?.verify.publicKeysEnv).toEqual(["INVOICES_WEBHOOK_PUBLIC_KEY"]);
    expect(trigger?.locks).toEqual(["invoice-paid"]);
    expect(trigger?.inputs.find((input) => input.name === "paid")?.default).toBe(true);
  });

  it("loads the example in lib/triggers/README.md", () => {
    const readme = readFileSync(new URL("../../../lib/triggers/README.md", import.meta.url), "utf8");
    const example = readme.split("```yaml\n")[1]?.split("```")[0] ?? "";
    expect(loaded(example, "README.md").map((trigger) => trigger.name)).toEqual(["deploy-on-push"]);
  });

  it("loads the example in the project README", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("### Webhook triggers"));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
    expect(loaded(example, "README.md").map((trigger) => trigger.name)).toEqual(["deploy"]);
  });

  it("keeps several triggers addressable by name", () => {
    const two = `${VALID}  - name: other\n${VALID.split("\n").slice(2).join("\n")}`;
    const result = parseTriggerFile(two);
    expect(result.ok && result.triggers.names()).toEqual(["deploy", "other"]);
    expect(result.ok && result.triggers.get("missing")).toBeUndefined();
  });
});

describe("parseTriggerFile: errors name the line, column and field", () => {
  it("a regular expression that does not compile", () => {
    const errors = errorsOf(withLine(15, '        pattern: "^refs/(heads"'));
    expect(errors).toEqual([
      {
        line: 15,
        column: 18,
        path: "triggers[0].inputs.branch.pattern",
        message: expect.stringMatching(/^not a valid regular expression \(.+\)$/),
      },
    ]);
  });

  it.each([
    ["a backreference", '        pattern: "(refs)/\\\\1"', /invalid escape sequence/],
    ["a lookahead", '        pattern: "^(?=refs)"', /unsupported Perl syntax/],
    ["a lookbehind", '        pattern: "(?<=refs/)heads"', /RE2|named capture/],
    ["a repeat over 1000", '        pattern: "^a{1001}"', /invalid repeat count/],
  ])("a regular expression that is not RE2: %s", (_what, line, reason) => {
    const errors = errorsOf(withLine(15, line));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ line: 15, path: "triggers[0].inputs.branch.pattern" });
    expect(errors[0]?.message).toMatch(reason);
  });

  it("a condition regular expression that is not RE2", () => {
    const errors = errorsOf(withLine(11, '        matches: "^refs/(?!tags)"'));
    expect(errors.map(({ line, path }) => ({ line, path }))).toEqual([
      { line: 11, path: "triggers[0].when[0].matches" },
    ]);
  });

  it("RE2-only syntax is accepted and matched by RE2", () => {
    const result = parseTriggerFile(withLine(15, '        pattern: "^refs/heads/[[:alnum:]]+\\\\z"'));
    expect(result.ok).toBe(true);
    const pattern = result.ok ? result.triggers.get("deploy")?.inputs[0]?.pattern : undefined;
    expect(pattern?.test("refs/heads/main")).toBe(true);
    expect(pattern?.test("refs/heads/main\n")).toBe(false);
  });

  it("a regular expression in a condition", () => {
    const errors = errorsOf(withLine(11, '        matches: "[a-"'));
    expect(errors.map(({ line, column, path }) => ({ line, column, path }))).toEqual([
      { line: 11, column: 18, path: "triggers[0].when[0].matches" },
    ]);
  });

  it("an input a template names but the trigger does not declare", () => {
    const errors = errorsOf(
      withLine(20, '      data: { tags: "${inputs.branch}", sha: "at ${inputs.sha}" }'),
    );
    expect(errors).toEqual([
      {
        line: 20,
        column: 46,
        path: "triggers[0].request.data.sha",
        message: 'unknown input "sha" in ${inputs.sha}; declared: branch',
      },
    ]);
  });

  it("a placeholder that is not an input reference", () => {
    const errors = errorsOf(withLine(20, '      data: { tags: "${input.branch}" }'));
    expect(errors[0]).toMatchObject({ line: 20, column: 21, path: "triggers[0].request.data.tags" });
    expect(errors[0]?.message).toContain("write ${inputs.NAME}");
  });

  it("unknown inputs in lock names and data writes", () => {
    const text = `${VALID}    locks: ["deploy-\${inputs.env}"]\n    on_complete:\n      - put: "last/\${inputs.who}"\n        value: x\n`;
    expect(errorsOf(text).map(({ line, column, path }) => ({ line, column, path }))).toEqual([
      { line: 21, column: 13, path: "triggers[0].locks[0]" },
      { line: 23, column: 14, path: "triggers[0].on_complete[0].put" },
    ]);
  });

  it("a missing policy, at the trigger that lacks it", () => {
    const lines = VALID.split("\n");
    lines.splice(5, 3);
    const errors = errorsOf(lines.join("\n"));
    expect(errors).toEqual([{ line: 2, column: 5, path: "triggers[0].policy", message: "required" }]);
  });

  it("duplicate trigger names, at the second one", () => {
    const two = `${VALID}  - name: deploy\n${VALID.split("\n").slice(2).join("\n")}`;
    const errors = errorsOf(two);
    expect(errors).toEqual([
      {
        line: 21,
        column: 11,
        path: "triggers[1].name",
        message: '"deploy" is already the name of triggers[0]',
      },
    ]);
  });

  it("duplicate names show even when another trigger is also wrong", () => {
    const two = `${withLine(19, "      action: 7")}  - name: deploy\n${VALID.split("\n").slice(2).join("\n")}`;
    expect(errorsOf(two).map((error) => error.path)).toEqual([
      "triggers[0].request.action",
      "triggers[1].name",
    ]);
  });

  it("values of the wrong type", () => {
    const errors = errorsOf(withLine(18, "      agent: [puppet]"));
    expect(errors).toEqual([
      { line: 18, column: 14, path: "triggers[0].request.agent", message: "expected string, received array" },
    ]);
  });

  it("an input type its constraints do not fit", () => {
    const text = withLine(
      15,
      "        type: integer\n        pattern: x\n        minimum: 3\n        maximum: 2",
    );
    expect(errorsOf(text)).toEqual([
      {
        line: 16,
        column: 18,
        path: "triggers[0].inputs.branch.pattern",
        message: "pattern applies to strings, not integer",
      },
      {
        line: 18,
        column: 18,
        path: "triggers[0].inputs.branch.maximum",
        message: "maximum is below minimum",
      },
    ]);
  });

  it("unknown keys, at the key itself", () => {
    const errors = errorsOf(withLine(8, '      actions: ["puppet#runonce"]\n    retries: 3'));
    expect(errors).toEqual([{ line: 9, column: 5, path: "triggers[0].retries", message: "unknown field" }]);
  });

  it("unknown keys inside the request and in policies", () => {
    const errors = errorsOf(
      withLine(8, '      actions: ["puppet#runonce"]\n      max_nodes: 3').replace(
        "agent: puppet",
        "agnet: puppet",
      ),
    );
    expect(errors.map(({ line, column, path, message }) => `${line}:${column} ${path}: ${message}`)).toEqual([
      "9:7 triggers[0].policy.max_nodes: unknown field",
      "18:7 triggers[0].request.agent: required",
      "19:7 triggers[0].request.agnet: unknown field",
    ]);
  });

  it("request values are checked as the /v1/rpc body checks them, unless a placeholder decides them", () => {
    const literal = errorsOf(
      withLine(20, '      data: { tags: "x" }\n      limit_method: sometimes\n      timeout: "30"'),
    );
    expect(literal.map(({ path }) => path)).toEqual([
      "triggers[0].request.limit_method",
      "triggers[0].request.timeout",
    ]);
    const templated = parseTriggerFile(
      withLine(
        20,
        '      data: { tags: "x" }\n      limit_method: "${inputs.branch}"\n      timeout: "${inputs.branch}"',
      ),
    );
    expect(templated.ok).toBe(true);
  });

  it("a verifier that lacks its secrets", () => {
    const errors = errorsOf(withLine(5, "      keys: [ci-bot]"));
    expect(errors.map((error) => `${error.path}: ${error.message}`)).toEqual([
      "triggers[0].verify.secrets_env: github needs secrets_env",
      "triggers[0].verify.keys: keys are for rfc9421 only",
    ]);
  });

  it("a default that its own checks refuse", () => {
    const errors = errorsOf(withLine(15, '        pattern: "^refs/heads/"\n        default: main'));
    expect(errors).toEqual([
      {
        line: 16,
        column: 18,
        path: "triggers[0].inputs.branch.default",
        message: '"main" does not match /^refs\\/heads\\//',
      },
    ]);
  });

  it("an input name that cannot be one, at the name", () => {
    const errors = errorsOf(withLine(13, '      "branch name":'));
    expect(errors).toEqual([
      {
        line: 13,
        column: 7,
        path: "triggers[0].inputs.branch name",
        message: "an input name is 1-64 letters, digits, '_' or '-'",
      },
    ]);
  });

  it("a condition with two operators", () => {
    const errors = errorsOf(withLine(11, "        equals: refs/heads/main\n        exists: true"));
    expect(errors[0]).toMatchObject({ line: 10, column: 9, path: "triggers[0].when[0]" });
  });

  it("the message lists every error as file:line:col path: message", () => {
    const result = parseTriggerFile(
      withLine(15, '        pattern: "("').replace("agent: puppet", "agent: 5"),
      {
        filename: "triggers.yaml",
      },
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const lines = result.message.split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^triggers\.yaml:15:18 triggers\[0\]\.inputs\.branch\.pattern: not a valid regular expression/,
    );
    expect(lines[1]).toBe("triggers.yaml:18:14 triggers[0].request.agent: expected string, received number");
  });

  it("YAML syntax errors and duplicate keys", () => {
    const errors = errorsOf(withLine(19, "      action: runonce\n      action: again"));
    expect(errors[0]).toMatchObject({ line: 20, column: 7, path: "" });
    expect(errors[0]?.message).toContain("unique");
    const broken = errorsOf("triggers:\n  - name: [unclosed\n");
    expect(broken[0]?.line).toBeGreaterThanOrEqual(2);
    expect(broken[0]?.path).toBe("");
  });

  it("JSON errors carry lines too", () => {
    const json = JSON.stringify(JSON.parse(fixture("standard.json")), null, 2).replace(
      '"limit": 1',
      '"limit": 1, "mode": "sync"',
    );
    const errors = errorsOf(json);
    expect(errors.map((error) => error.path)).toEqual(["triggers[0].request.mode"]);
    expect(errors[0]?.line).toBe(json.split("\n").findIndex((line) => line.includes('"mode"')) + 1);
  });

  it("an empty file", () => {
    expect(errorsOf("")).toEqual([
      { line: 1, column: 1, path: "", message: "expected object, received null" },
    ]);
  });
});

describe("triggerSecrets", () => {
  const [github] = loaded(fixture("github-push.yaml"));
  const [standard] = loaded(fixture("standard.json"));

  it("reads the named variables in order", () => {
    expect(
      triggerSecrets(github as Trigger, { GITHUB_HOOK_SECRET: "new", GITHUB_HOOK_SECRET_OLD: "old" }),
    ).toEqual({
      ok: true,
      secrets: ["new", "old"],
      publicKeys: [],
    });
    expect(
      triggerSecrets(standard as Trigger, {
        INVOICES_WEBHOOK_SECRET: "whsec_x",
        INVOICES_WEBHOOK_PUBLIC_KEY: "whpk_y",
      }),
    ).toEqual({ ok: true, secrets: ["whsec_x"], publicKeys: ["whpk_y"] });
  });

  it("names every variable that is unset or empty", () => {
    expect(triggerSecrets(github as Trigger, { GITHUB_HOOK_SECRET_OLD: "" })).toEqual({
      ok: false,
      missing: ["GITHUB_HOOK_SECRET", "GITHUB_HOOK_SECRET_OLD"],
    });
  });
});
