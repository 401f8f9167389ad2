// A trigger's inputs: where each value comes from, its type, and the checks it must pass. The same check
// runs on a configured default at load time and on every delivered value.
import { type Re2Regex, regexLiteral } from "../protocol/mod.ts";
import type { PathSegment } from "./paths.ts";
import { shellUnsafeFragment } from "./shellsafe.ts";

export const INPUT_TYPES = ["string", "integer", "number", "boolean"] as const;
type InputType = (typeof INPUT_TYPES)[number];
export type InputValue = string | number | boolean;

export type InputSource =
  | { kind: "payload"; path: string; segments: PathSegment[] }
  | { kind: "header"; name: string }
  | { kind: "data"; key: string };

export interface InputSpec {
  name: string;
  /** As written in the file: `payload.ref`, `header.x-github-event`, `data.deploy/env`. */
  from: string;
  source: InputSource;
  type: InputType;
  /** Used when the source has no value (absent or null); without one the input is required. */
  default?: InputValue;
  /** RE2, matched anywhere in the value unless anchored. */
  pattern?: Re2Regex;
  enum?: InputValue[];
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  shellsafe: boolean;
}

export type InputCheck = { ok: true; value: InputValue } | { ok: false; detail: string };

const SHOWN_CHARACTERS = 100;
const INTEGER_TEXT = /^-?\d{1,15}$/;
const NUMBER_TEXT = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A value as it may appear in an error: quoted, at most 100 characters, control characters escaped. */
export function shown(value: unknown): string {
  if (typeof value !== "string") return describeType(value);
  const characters = [...value];
  const cut = characters.length > SHOWN_CHARACTERS;
  return JSON.stringify(cut ? `${characters.slice(0, SHOWN_CHARACTERS).join("")}…` : value);
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return String(value);
}

/**
 * Webhook values arrive as JSON or, from headers and forms, as text; text is converted to the declared
 * type when it spells one exactly ("42" for an integer, "true" for a boolean).
 */
function coerce(type: InputType, value: unknown): InputCheck {
  switch (type) {
    case "string":
      if (typeof value === "string") return { ok: true, value };
      if (typeof value === "number" || typeof value === "boolean") return { ok: true, value: String(value) };
      return { ok: false, detail: `expected a string, got ${describeType(value)}` };
    case "integer":
      if (typeof value === "number" && Number.isSafeInteger(value)) return { ok: true, value };
      if (typeof value === "string" && INTEGER_TEXT.test(value)) return { ok: true, value: Number(value) };
      return { ok: false, detail: `expected an integer, got ${shown(value)}` };
    case "number":
      if (typeof value === "number" && Number.isFinite(value)) return { ok: true, value };
      if (typeof value === "string" && NUMBER_TEXT.test(value) && Number.isFinite(Number(value)))
        return { ok: true, value: Number(value) };
      return { ok: false, detail: `expected a number, got ${shown(value)}` };
    case "boolean":
      if (typeof value === "boolean") return { ok: true, value };
      if (value === "true" || value === "false") return { ok: true, value: value === "true" };
      return { ok: false, detail: `expected a boolean, got ${shown(value)}` };
  }
}

export function checkInputValue(spec: InputSpec, raw: unknown): InputCheck {
  const coerced = coerce(spec.type, raw);
  if (!coerced.ok) return coerced;
  const value = coerced.value;
  if (typeof value === "string") {
    const length = [...value].length;
    if (spec.minLength !== undefined && length < spec.minLength)
      return { ok: false, detail: `${shown(value)} is shorter than ${spec.minLength} characters` };
    if (spec.maxLength !== undefined && length > spec.maxLength)
      return { ok: false, detail: `${shown(value)} is longer than ${spec.maxLength} characters` };
    if (spec.pattern && !spec.pattern.test(value))
      return { ok: false, detail: `${shown(value)} does not match ${regexLiteral(spec.pattern)}` };
    const unsafe = spec.shellsafe ? shellUnsafeFragment(value) : undefined;
    if (unsafe !== undefined)
      return {
        ok: false,
        detail: `${shown(value)} is not shell-safe: it contains ${JSON.stringify(unsafe)}`,
      };
  }
  if (typeof value === "number") {
    if (spec.minimum !== undefined && value < spec.minimum)
      return { ok: false, detail: `${value} is below the minimum of ${spec.minimum}` };
    if (spec.maximum !== undefined && value > spec.maximum)
      return { ok: false, detail: `${value} is above the maximum of ${spec.maximum}` };
  }
  if (spec.enum && !spec.enum.includes(value))
    return {
      ok: false,
      detail: `${shown(value)} is not one of ${spec.enum.map((option) => JSON.stringify(option)).join(", ")}`,
    };
  return { ok: true, value };
}
