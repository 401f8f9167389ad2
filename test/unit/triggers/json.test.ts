import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseTriggerJson } from "../../../lib/triggers/mod.ts";
import { parseTriggerFile, triggerFileJson } from "../../../lib/triggers/node.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../../fixtures/triggers/${name}`, import.meta.url), "utf8");

describe("the trigger file compiled to JSON for the Worker", () => {
  it.each(["github-push.yaml", "slack-command.yaml", "standard.json", "stripe-payment.yaml"])(
    "%s compiles to JSON that gives the same triggers",
    (name) => {
      const compiled = triggerFileJson(fixture(name));
      if (!compiled.ok) throw new Error(compiled.message);
      expect(compiled.json).not.toContain("\n");
      const fromJson = parseTriggerJson(compiled.json);
      const fromYaml = parseTriggerFile(fixture(name));
      if (!fromJson.ok || !fromYaml.ok) throw new Error("a fixture did not load");
      expect(fromJson.triggers.all()).toEqual(fromYaml.triggers.all());
    },
  );

  it("refuses what the YAML path refuses, with the same field and message", () => {
    const bad = { triggers: [{ name: "t", verify: { scheme: "carrier-pigeon" } }] };
    const json = parseTriggerJson(JSON.stringify(bad), { filename: "TEXT" });
    const yaml = parseTriggerFile(JSON.stringify(bad), { filename: "TEXT" });
    if (json.ok || yaml.ok) throw new Error("accepted");
    // Sorted by field: the YAML errors come in file order, the JSON ones (all at 1:1) in zod's.
    const fields = (errors: { path: string; message: string }[]) =>
      errors.map(({ path, message }) => `${path}: ${message}`).sort();
    expect(fields(json.errors)).toEqual(fields(yaml.errors));
    expect(json.message).toMatch(/^TEXT:1:1 triggers\[0\]\.verify\.scheme: /);
  });

  it("says when the text is not JSON, and compile says where a YAML file is wrong", () => {
    const notJson = parseTriggerJson("triggers: []", { filename: "TEXT" });
    expect(!notJson.ok && notJson.message).toMatch(/^TEXT:1:1: not JSON: /);
    const compiled = triggerFileJson("triggers:\n  - name: [\n", { filename: "t.yaml" });
    expect(!compiled.ok && compiled.message).toMatch(/^t\.yaml:\d+:\d+: /);
  });
});
