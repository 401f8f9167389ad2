// The `when` list: plain comparisons on headers and payload fields. Nothing is evaluated as code; the
// only computation is a regular expression compiled when the file was loaded.
import { type Re2Regex, regexLiteral } from "../protocol/mod.ts";
import { shown } from "./inputs.ts";
import { lookupPath, type PathSegment } from "./paths.ts";

export type ConditionScalar = string | number | boolean | null;

type ConditionSubject =
  | { kind: "header"; name: string }
  | { kind: "path"; path: string; segments: PathSegment[] };

type ConditionTest =
  | { op: "equals"; value: ConditionScalar }
  | { op: "matches"; regex: Re2Regex }
  | { op: "in"; values: ConditionScalar[] }
  | { op: "exists"; value: boolean };

export type Condition =
  | { kind: "test"; subject: ConditionSubject; test: ConditionTest }
  | { kind: "not"; condition: Condition };

export interface Delivery {
  payload: unknown;
  headers: Headers;
}

/** Headers are text, so a header condition compares text; payload values compare by type (1 is not "1"). */
function subjectValue(subject: ConditionSubject, delivery: Delivery): unknown {
  if (subject.kind === "header") return delivery.headers.get(subject.name) ?? undefined;
  return lookupPath(delivery.payload, subject.segments);
}

function sameValue(subject: ConditionSubject, actual: unknown, expected: ConditionScalar): boolean {
  if (subject.kind === "header") return expected !== null && actual === String(expected);
  return actual === expected;
}

function passes(condition: Condition, delivery: Delivery): boolean {
  if (condition.kind === "not") return !passes(condition.condition, delivery);
  const { subject, test } = condition;
  const actual = subjectValue(subject, delivery);
  switch (test.op) {
    case "equals":
      return sameValue(subject, actual, test.value);
    case "in":
      return test.values.some((value) => sameValue(subject, actual, value));
    case "exists":
      return (actual !== undefined && actual !== null) === test.value;
    case "matches":
      return (typeof actual === "string" || typeof actual === "number") && test.regex.test(String(actual));
  }
}

export function describeCondition(condition: Condition): string {
  if (condition.kind === "not") return `not (${describeCondition(condition.condition)})`;
  const { subject, test } = condition;
  const what = subject.kind === "header" ? `header ${subject.name}` : `path ${subject.path}`;
  switch (test.op) {
    case "equals":
      return `${what} equals ${JSON.stringify(test.value)}`;
    case "in":
      return `${what} in [${test.values.map((value) => JSON.stringify(value)).join(", ")}]`;
    case "exists":
      return `${what} ${test.value ? "exists" : "does not exist"}`;
    case "matches":
      return `${what} matches ${regexLiteral(test.regex)}`;
  }
}

function innermostSubject(condition: Condition): ConditionSubject {
  return condition.kind === "not" ? innermostSubject(condition.condition) : condition.subject;
}

/** Why the delivery is skipped: the first condition that does not hold, and what was found instead. */
export function firstFailingCondition(
  conditions: readonly Condition[],
  delivery: Delivery,
): string | undefined {
  for (const [index, condition] of conditions.entries()) {
    if (passes(condition, delivery)) continue;
    const actual = subjectValue(innermostSubject(condition), delivery);
    const found = actual === undefined ? "absent" : `found ${shown(actual)}`;
    return `when[${index}] did not hold: ${describeCondition(condition)} (${found})`;
  }
  return undefined;
}
