import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evaluateTrigger, parsePayload, type Trigger } from "../../../lib/triggers/mod.ts";
import { parseTriggerFile } from "../../../lib/triggers/node.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../../fixtures/triggers/${name}`, import.meta.url), "utf8");

function trigger(file: string): Trigger {
  const result = parseTriggerFile(fixture(file));
  if (!result.ok) throw new Error(result.message);
  return result.triggers.get(result.triggers.names()[0] as string) as Trigger;
}

describe("nothing a sender or an operator writes makes the triggers throw", () => {
  it("parseTriggerFile answers every text with triggers or located errors", () => {
    const lines = fixture("github-push.yaml").split("\n");
    const mangled = fc
      .tuple(fc.nat(lines.length - 1), fc.string({ maxLength: 40 }))
      .map(([index, replacement]) => lines.map((line, at) => (at === index ? replacement : line)).join("\n"));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mangled), (text) => {
        const result = parseTriggerFile(text);
        if (!result.ok) {
          expect(result.errors.length).toBeGreaterThan(0);
          for (const error of result.errors) {
            expect(error.line).toBeGreaterThanOrEqual(1);
            expect(error.column).toBeGreaterThanOrEqual(1);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("refuses an alias bomb instead of expanding it", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let level = 1; level < 10; level++) {
      const previous = String.fromCharCode(96 + level);
      const next = String.fromCharCode(97 + level);
      bomb.push(`${next}: &${next} [${Array(10).fill(`*${previous}`).join(", ")}]`);
    }
    const result = parseTriggerFile(`${bomb.join("\n")}\ntriggers: []\n`);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toMatch(/alias/i);
  });

  it("parsePayload answers every body", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("application/json", "application/x-www-form-urlencoded", "text/plain", null),
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.string().map((text) => new TextEncoder().encode(text)),
        ),
        (contentType, body) => {
          const parsed = parsePayload(contentType, body);
          expect(typeof parsed.ok).toBe("boolean");
        },
      ),
    );
  });

  it("evaluateTrigger answers every JSON payload with run, skip or invalid", async () => {
    const triggers = ["github-push.yaml", "stripe-payment.yaml", "slack-command.yaml", "standard.json"].map(
      trigger,
    );
    const headers = new Headers({ "x-github-event": "push" });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...triggers), fc.jsonValue(), async (chosen, payload) => {
        const outcome = await evaluateTrigger(chosen, { payload, headers }, async () => undefined);
        expect(["run", "skip", "invalid"]).toContain(outcome.kind);
      }),
      { numRuns: 300 },
    );
  });
});
