import { readFileSync } from "node:fs";
import AjvDraft04 from "ajv-draft-04";
import fc from "fast-check";
import { expect } from "vitest";
import * as z from "zod/mini";
import type { Decoded } from "../../../lib/protocol/errors.ts";
import { fieldPath } from "../../../lib/protocol/json.ts";

/** Raw text of a fixture in test/fixtures/protocol. */
export function fixtureText(name: string): string {
  return readFileSync(new URL(`../../fixtures/protocol/${name}`, import.meta.url), "utf8");
}

/** The JSON text as JSON.stringify writes it: what a byte-exact re-encode must reproduce. */
export function compact(json: string): string {
  return JSON.stringify(JSON.parse(json));
}

export type SchemaName = "transport" | "secure_request" | "secure_reply" | "request" | "reply";

// Choria's canonical draft-04 schemas, copied with their provenance into the test fixtures.
const SCHEMA_DIR = new URL("../../fixtures/choria-schemas/v1/", import.meta.url);

let validators: Record<SchemaName, (value: unknown) => string[]> | undefined;

/** Validators for the v1 schemas; each returns the list of schema errors (empty when valid). */
export function v1Schemas(): Record<SchemaName, (value: unknown) => string[]> {
  if (validators) return validators;
  // ajv-draft-04 is CommonJS; under NodeNext its class is the default export's `default`.
  const ajv = new AjvDraft04.default({ allErrors: true, strict: false });
  const load = (name: SchemaName) => {
    const schema = JSON.parse(readFileSync(new URL(`${name}.json`, SCHEMA_DIR), "utf8"));
    // Some of the files name the draft-04 meta-schema without its trailing '#'; ajv only knows it with one.
    schema.$schema = "http://json-schema.org/draft-04/schema#";
    const validate = ajv.compile(schema);
    return (value: unknown) =>
      validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  };
  validators = {
    transport: load("transport"),
    secure_request: load("secure_request"),
    secure_reply: load("secure_reply"),
    request: load("request"),
    reply: load("reply"),
  };
  return validators;
}

/**
 * Holds a hand-written check to its schema: `valid` with up to three of `fields` (dotted, one level deep)
 * removed or replaced by odd values, and odd values alone, are kept or refused alike, a kept document is
 * the same value, and a refusal names the same first field (and, with `sameWords`, says it in zod's words).
 * Other protocol versions are decode's own rule.
 */
export function expectSchemaVerdicts<T>(
  decode: (text: string) => Decoded<T>,
  schema: z.ZodMiniType<T>,
  valid: Record<string, unknown>,
  fields: string[],
  sameWords = false,
): void {
  const odd = fc.oneof(
    fc.constantFrom(undefined, null, "", "x", 0, 1.5, 2 ** 53, -1, true, [], {}, ["a"]),
    fc.constantFrom(...Object.values(valid).filter((v) => typeof v === "string")),
    fc.constantFrom("a".repeat(31), "a".repeat(32), "a".repeat(33)),
    fc.jsonValue({ maxDepth: 1 }),
  );
  const mutated = fc
    .array(fc.tuple(fc.constantFrom(...fields, "extra"), odd), { maxLength: 3 })
    .map((changes) => {
      // biome-ignore lint/suspicious/noExplicitAny: a document being broken on purpose
      const doc: any = structuredClone(valid);
      for (const [path, value] of changes) {
        const [head, tail] = path.split(".") as [string, string | undefined];
        const target = tail === undefined ? doc : doc[head];
        if (typeof target !== "object" || target === null) continue;
        if (value === undefined) delete target[tail ?? head];
        // A copy: fast-check hands out the same `{}` and `[]` each time, and one placed under another
        // would make the document cyclic.
        else target[tail ?? head] = structuredClone(value);
      }
      return doc;
    });
  fc.assert(
    fc.property(fc.oneof(mutated, odd), (doc) => {
      const text = JSON.stringify(doc) ?? "null";
      const byHand = decode(text);
      if (!byHand.ok && byHand.error.code === "unsupported_protocol") return;
      const bySchema = z.safeParse(schema, JSON.parse(text));
      expect(byHand.ok).toBe(bySchema.success);
      if (byHand.ok && bySchema.success) expect(byHand.value).toEqual(bySchema.data);
      if (!byHand.ok && !bySchema.success) {
        const issue = bySchema.error.issues[0]!;
        expect(byHand.error.field).toBe(fieldPath(issue.path));
        if (sameWords) expect(byHand.error.message.endsWith(`: ${issue.message}`)).toBe(true);
      }
    }),
    { numRuns: 5000 },
  );
}
