// biome-ignore-all lint/suspicious/noTemplateCurlyInString: trigger templates are written ${inputs.NAME}
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  evaluateTrigger,
  parsePayload,
  type Trigger,
  type TriggerOutcome,
} from "../../../lib/triggers/mod.ts";
import { parseTriggerFile } from "../../../lib/triggers/node.ts";

const fixturePath = (name: string) => new URL(`../../fixtures/triggers/${name}`, import.meta.url);

function trigger(file: string): Trigger {
  const result = parseTriggerFile(readFileSync(fixturePath(file), "utf8"), { filename: file });
  if (!result.ok) throw new Error(result.message);
  return result.triggers.get(result.triggers.names()[0] as string) as Trigger;
}

function delivery(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(fixturePath(`deliveries/${file}`), "utf8"));
}

const noData = async () => undefined;

function dataStore(entries: Record<string, string>) {
  const reads: string[] = [];
  const read = async (key: string) => {
    reads.push(key);
    return entries[key];
  };
  return { reads, read };
}

function expectRun(outcome: TriggerOutcome) {
  if (outcome.kind !== "run") throw new Error(`expected a run, got ${JSON.stringify(outcome)}`);
  return outcome;
}

function expectInvalid(outcome: TriggerOutcome) {
  if (outcome.kind !== "invalid") throw new Error(`expected invalid inputs, got ${JSON.stringify(outcome)}`);
  return outcome.errors;
}

describe("a GitHub push", () => {
  const deploy = trigger("github-push.yaml");
  const headers = new Headers({
    "X-GitHub-Event": "push",
    "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
  });
  const push = delivery("github-push.json");

  it("to main runs Puppet with the mapped inputs, the default environment and the rendered locks", async () => {
    const store = dataStore({});
    const outcome = expectRun(await evaluateTrigger(deploy, { payload: push, headers }, store.read));
    expect(store.reads).toEqual(["deploy/env"]);
    expect(outcome.inputs).toEqual({
      branch: "refs/heads/main",
      sha: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
      event: "push",
      environment: "production",
      commits: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
    });
    expect(outcome.body).toEqual({
      cluster: "mcollective",
      agent: "puppet",
      action: "runonce",
      data: {
        environment: "production",
        tags: "refs/heads/main",
        note: "push 0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c (push)",
      },
      filter: { fact: [{ fact: "role", operator: "==", value: "web" }] },
      timeout: 60,
    });
    expect(outcome.locks).toEqual(["deploy", "deploy-production"]);
    expect(outcome.onComplete).toEqual([
      {
        op: "put",
        key: "deploy/last-sha",
        value: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
        whenState: ["complete"],
      },
      { op: "delete", key: "deploy/pending" },
    ]);
  });

  it("does not change the trigger's templates", async () => {
    await evaluateTrigger(deploy, { payload: push, headers }, noData);
    expect(deploy.locks).toEqual(["deploy", "deploy-${inputs.environment}"]);
    expect((deploy.request.data as Record<string, unknown>).tags).toBe("${inputs.branch}");
  });

  it("takes a data-bound input from the store when the key is there", async () => {
    const store = dataStore({ "deploy/env": "staging" });
    const outcome = expectRun(await evaluateTrigger(deploy, { payload: push, headers }, store.read));
    expect(outcome.inputs.environment).toBe("staging");
    expect(outcome.locks).toEqual(["deploy", "deploy-staging"]);
  });

  it("takes each lock once, in one order, whatever the file's order", async () => {
    const reordered = { ...deploy, locks: ["deploy-${inputs.environment}", "deploy", "deploy-production"] };
    const outcome = expectRun(await evaluateTrigger(reordered, { payload: push, headers }, noData));
    expect(outcome.locks).toEqual(["deploy", "deploy-production"]);
  });

  it("checks a stored value like any other input", async () => {
    const errors = expectInvalid(
      await evaluateTrigger(deploy, { payload: push, headers }, dataStore({ "deploy/env": "qa" }).read),
    );
    expect(errors).toEqual([
      {
        field: "inputs.environment",
        pointer: "/inputs/environment",
        detail: 'data.deploy/env: "qa" is not one of "production", "staging"',
      },
    ]);
  });

  it("to another branch is skipped, naming the condition", async () => {
    const store = dataStore({});
    const outcome = await evaluateTrigger(
      deploy,
      { payload: { ...push, ref: "refs/heads/feature/x" }, headers },
      store.read,
    );
    expect(outcome).toEqual({
      kind: "skip",
      reason: 'when[1] did not hold: path ref equals "refs/heads/main" (found "refs/heads/feature/x")',
    });
    expect(store.reads).toEqual([]);
  });

  it("of another event or repository, or a deleted branch, is skipped", async () => {
    const ping = await evaluateTrigger(
      deploy,
      { payload: push, headers: new Headers({ "x-github-event": "ping" }) },
      noData,
    );
    expect(ping).toEqual({
      kind: "skip",
      reason: 'when[0] did not hold: header x-github-event equals "push" (found "ping")',
    });
    const fork = { ...push, repository: { full_name: "mallory/webapp" } };
    expect(await evaluateTrigger(deploy, { payload: fork, headers }, noData)).toMatchObject({
      kind: "skip",
      reason: expect.stringMatching(
        /^when\[2\] did not hold: path repository.full_name matches \/\^acme\\\/\//,
      ),
    });
    const deleted = await evaluateTrigger(deploy, { payload: { ...push, deleted: true }, headers }, noData);
    expect(deleted).toMatchObject({ kind: "skip", reason: expect.stringContaining("when[3]") });
    const noHeader = await evaluateTrigger(deploy, { payload: push, headers: new Headers() }, noData);
    expect(noHeader).toMatchObject({ reason: expect.stringContaining("(absent)") });
  });

  it("reports every input that fails, each naming its source and what failed", async () => {
    const bad = { ...push, after: "not-a-sha", commits: [{ id: "0d1a26e" }] };
    const errors = expectInvalid(await evaluateTrigger(deploy, { payload: bad, headers }, noData));
    expect(errors).toEqual([
      {
        field: "inputs.sha",
        pointer: "/inputs/sha",
        detail: 'payload.after: "not-a-sha" does not match /^[0-9a-f]{40}$/',
      },
      {
        field: "inputs.commits",
        pointer: "/inputs/commits",
        detail: 'payload.commits[0].id: "0d1a26e" is shorter than 40 characters',
      },
    ]);
  });

  it("refuses a missing required input and a value of the wrong shape", async () => {
    const { after: _after, ...withoutAfter } = push;
    const missing = expectInvalid(await evaluateTrigger(deploy, { payload: withoutAfter, headers }, noData));
    expect(missing).toEqual([
      {
        field: "inputs.sha",
        pointer: "/inputs/sha",
        detail: "payload.after: required, and the delivery has no value for it",
      },
    ]);
    const objectRef = { ...push, commits: [{ id: { nested: true } }] };
    const shape = expectInvalid(await evaluateTrigger(deploy, { payload: objectRef, headers }, noData));
    expect(shape[0]?.detail).toBe("payload.commits[0].id: expected a string, got an object");
  });
});

describe("a Stripe event", () => {
  const paid = trigger("stripe-payment.yaml");
  const headers = new Headers({ "stripe-signature": "t=1732579200,v1=0" });
  const succeeded = delivery("stripe-payment-intent-succeeded.json");
  const object = (succeeded.data as { object: Record<string, unknown> }).object;
  const withObject = (changes: Record<string, unknown>) => ({
    ...succeeded,
    data: { object: { ...object, ...changes } },
  });

  it("payment_intent.succeeded provisions the customer, the amount staying a number", async () => {
    const outcome = expectRun(await evaluateTrigger(paid, { payload: succeeded, headers }, noData));
    expect(outcome.body).toEqual({
      cluster: "billing",
      agent: "provision",
      action: "activate",
      data: { customer: "cus_R2a9XyZ7bQ1w", amount: 2000, currency: "eur" },
      nodes: ["shop1.example.net"],
      timeout: 30,
    });
    expect(outcome.locks).toEqual(["customer-cus_R2a9XyZ7bQ1w"]);
    expect(outcome.onComplete).toEqual([]);
  });

  it("payment_intent.payment_failed is skipped", async () => {
    const failed = { ...succeeded, type: "payment_intent.payment_failed" };
    expect(await evaluateTrigger(paid, { payload: failed, headers }, noData)).toEqual({
      kind: "skip",
      reason:
        'when[0] did not hold: path type equals "payment_intent.succeeded" (found "payment_intent.payment_failed")',
    });
  });

  it("a negated condition skips what it names", async () => {
    const testOnly = withObject({ metadata: { node: "shop1.example.net", test_only: "yes" } });
    expect(await evaluateTrigger(paid, { payload: testOnly, headers }, noData)).toEqual({
      kind: "skip",
      reason: 'when[2] did not hold: not (path data.object.metadata.test_only equals "yes") (found "yes")',
    });
  });

  it("checks enum, minimum, maximum and integer type", async () => {
    const errors = expectInvalid(
      await evaluateTrigger(paid, { payload: withObject({ amount: 0, currency: "jpy" }), headers }, noData),
    );
    expect(errors.map((error) => error.detail)).toEqual([
      "payload.data.object.amount: 0 is below the minimum of 1",
      'payload.data.object.currency: "jpy" is not one of "eur", "usd", "gbp"',
    ]);
    const big = expectInvalid(
      await evaluateTrigger(paid, { payload: withObject({ amount: 10_000_000 }), headers }, noData),
    );
    expect(big[0]?.detail).toBe("payload.data.object.amount: 10000000 is above the maximum of 1000000");
    const fraction = expectInvalid(
      await evaluateTrigger(paid, { payload: withObject({ amount: 12.5 }), headers }, noData),
    );
    expect(fraction[0]?.detail).toBe("payload.data.object.amount: expected an integer, got 12.5");
  });

  it("a string that spells an integer becomes one", async () => {
    const outcome = expectRun(
      await evaluateTrigger(paid, { payload: withObject({ amount: "150" }), headers }, noData),
    );
    expect((outcome.body.data as Record<string, unknown>).amount).toBe(150);
  });
});

describe("a Slack slash command", () => {
  const restart = trigger("slack-command.yaml");
  const headers = new Headers({ "content-type": "application/x-www-form-urlencoded" });
  const form = readFileSync(fixturePath("deliveries/slack-command.txt"));

  function slackPayload(changes: Record<string, string> = {}): unknown {
    const params = new URLSearchParams(form.toString("utf8"));
    for (const [key, value] of Object.entries(changes)) params.set(key, value);
    const parsed = parsePayload(
      "application/x-www-form-urlencoded",
      new TextEncoder().encode(params.toString()),
    );
    if (!parsed.ok) throw new Error(parsed.detail);
    return parsed.payload;
  }

  it("restarts the named service, read from the form body", async () => {
    const outcome = expectRun(await evaluateTrigger(restart, { payload: slackPayload(), headers }, noData));
    expect(outcome.body.data).toEqual({ service: "nginx", requested_by: "slack:steve" });
    expect(outcome.locks).toEqual([]);
  });

  it("from another workspace is skipped", async () => {
    const outcome = await evaluateTrigger(
      restart,
      { payload: slackPayload({ team_domain: "evil" }), headers },
      noData,
    );
    expect(outcome).toMatchObject({
      kind: "skip",
      reason: expect.stringContaining('team_domain in ["acme", "acme-ops"]'),
    });
  });

  it.each([
    ["a command separator", "steve; rm -rf /", ";"],
    ["backticks", "steve`id`", "`"],
    ["command substitution", "steve$(id)", "$"],
    ["a newline", "steve\nrm -rf /", "\n"],
    ["a pipe", "steve | sh", "|"],
    ["a redirect", "steve > /etc/passwd", ">"],
    ["&&", "steve && reboot", "&&"],
  ])("refuses %s in a shell-safe input", async (_, userName, fragment) => {
    const outcome = await evaluateTrigger(
      restart,
      { payload: slackPayload({ user_name: userName }), headers },
      noData,
    );
    const errors = expectInvalid(outcome);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.field).toBe("inputs.user");
    expect(errors[0]?.detail).toContain(`is not shell-safe: it contains ${JSON.stringify(fragment)}`);
    expect(errors[0]?.detail).not.toContain("\n");
  });
});

describe("validation errors", () => {
  const note = parseTriggerFile(`triggers:
  - name: note
    verify: { scheme: standard-webhooks, secrets_env: [SECRET] }
    policy: { agents: [echo], actions: ["echo#say"] }
    inputs:
      text: { from: payload.text, shellsafe: true }
    request: { cluster: c, agent: echo, action: say, data: { text: "\${inputs.text}" } }
`);
  if (!note.ok) throw new Error(note.message);
  const say = note.triggers.get("note") as Trigger;

  it("quote at most 100 characters of the offending value", async () => {
    const long = `${"a".repeat(500)}; rm -rf /`;
    const errors = expectInvalid(
      await evaluateTrigger(say, { payload: { text: long }, headers: new Headers() }, noData),
    );
    expect(errors[0]?.detail).toBe(`payload.text: "${"a".repeat(100)}…" is not shell-safe: it contains ";"`);
  });
});

describe("typed substitution (Standard Webhooks, JSON config)", () => {
  const invoice = trigger("standard.json");
  const headers = new Headers();

  it("keeps numbers and booleans typed where a string is exactly one placeholder, text elsewhere", async () => {
    const payload = { type: "invoice.paid", data: { id: "inv_42", attempts: 3 } };
    const outcome = expectRun(await evaluateTrigger(invoice, { payload, headers }, noData));
    expect(outcome.body.data).toEqual({ invoice: "inv_42", attempts: 3, paid: true, ratio: 1.5 });
    expect(outcome.body.limit).toBe(1);
    expect(outcome.onComplete).toEqual([{ op: "put", key: "invoices/last", value: "inv_42 after 3" }]);
    expect(outcome.locks).toEqual(["invoice-paid"]);
  });

  it("converts text that spells the declared type, and refuses text that does not", async () => {
    const payload = {
      type: "invoice.paid",
      data: { id: "inv_42", attempts: "2", paid: "false", ratio: "0.25" },
    };
    const outcome = expectRun(await evaluateTrigger(invoice, { payload, headers }, noData));
    expect(outcome.body.data).toEqual({ invoice: "inv_42", attempts: 2, paid: false, ratio: 0.25 });
    const wrong = {
      type: "invoice.paid",
      data: { id: "inv_42", attempts: "two", paid: "yes", ratio: "1e999" },
    };
    const errors = expectInvalid(await evaluateTrigger(invoice, { payload: wrong, headers }, noData));
    expect(errors.map((error) => error.detail)).toEqual([
      'payload.data.attempts: expected an integer, got "two"',
      'payload.data.paid: expected a boolean, got "yes"',
      'payload.data.ratio: expected a number, got "1e999"',
    ]);
  });

  it("an exists condition skips a delivery without the field, and null counts as absent", async () => {
    const payload = { type: "invoice.paid", data: { id: "inv_42", attempts: null } };
    expect(await evaluateTrigger(invoice, { payload, headers }, noData)).toEqual({
      kind: "skip",
      reason: "when[1] did not hold: path data.attempts exists (found null)",
    });
  });
});
