import { readFileSync } from "node:fs";
import AjvDraft04 from "ajv-draft-04";

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
