// One delivery through one trigger: conditions, then inputs, then the rendered request. Pure apart from
// the data-store reads, which come in through a callback so the gateway decides where data lives.
import { type Delivery, firstFailingCondition } from "./conditions.ts";
import type { DataAction, Trigger } from "./config.ts";
import { checkInputValue, type InputSpec, type InputValue } from "./inputs.ts";
import { lookupPath } from "./paths.ts";
import { parseTemplate, renderText, renderValue } from "./template.ts";

/** One input that failed, in the gateway's field-error shape: `inputs.<name>`, `/inputs/<name>`. */
interface InputError {
  field: string;
  pointer: string;
  detail: string;
}

export type TriggerOutcome =
  | {
      kind: "run";
      /** The body for /v1/rpc, placeholders rendered; the gateway validates it like any other. */
      body: Record<string, unknown>;
      inputs: Record<string, unknown>;
      /** Rendered, each once, sorted: take them in this order. */
      locks: string[];
      onComplete: DataAction[];
    }
  | { kind: "skip"; reason: string }
  | { kind: "invalid"; errors: [InputError, ...InputError[]] };

export type ReadData = (key: string) => Promise<string | undefined>;

async function rawValue(spec: InputSpec, delivery: Delivery, readData: ReadData): Promise<unknown> {
  switch (spec.source.kind) {
    case "payload":
      return lookupPath(delivery.payload, spec.source.segments);
    case "header":
      return delivery.headers.get(spec.source.name) ?? undefined;
    case "data":
      return readData(spec.source.key);
  }
}

type Resolved = { ok: true; value: InputValue } | { ok: false; error: InputError };

async function resolveInput(spec: InputSpec, delivery: Delivery, readData: ReadData): Promise<Resolved> {
  const fail = (detail: string): Resolved => ({
    ok: false,
    error: {
      field: `inputs.${spec.name}`,
      pointer: `/inputs/${spec.name}`,
      detail: `${spec.from}: ${detail}`,
    },
  });
  const raw = await rawValue(spec, delivery, readData);
  if (raw === undefined || raw === null) {
    if (spec.default === undefined) return fail("required, and the delivery has no value for it");
    return { ok: true, value: spec.default };
  }
  const checked = checkInputValue(spec, raw);
  return checked.ok ? checked : fail(checked.detail);
}

function renderString(template: string, inputs: Record<string, unknown>): string {
  const parsed = parseTemplate(template);
  return parsed.ok ? renderText(parsed.parts, inputs) : template;
}

/**
 * Two placeholders can render to the same name, and a run must not wait for a lock it already holds; two
 * triggers that take the same locks in different orders could each hold one the other wants. One global
 * order (sorted, each name once) rules out both.
 */
function lockOrder(names: string[]): string[] {
  return [...new Set(names)].sort();
}

export async function evaluateTrigger(
  trigger: Trigger,
  delivery: Delivery,
  readData: ReadData,
): Promise<TriggerOutcome> {
  const failing = firstFailingCondition(trigger.conditions, delivery);
  if (failing !== undefined) return { kind: "skip", reason: failing };
  const resolved = await Promise.all(trigger.inputs.map((spec) => resolveInput(spec, delivery, readData)));
  const [firstError, ...moreErrors] = resolved.flatMap((result) => (result.ok ? [] : [result.error]));
  if (firstError !== undefined) return { kind: "invalid", errors: [firstError, ...moreErrors] };
  const inputs = Object.fromEntries(
    trigger.inputs.map((spec, index) => [spec.name, (resolved[index] as { value: InputValue }).value]),
  );
  return {
    kind: "run",
    body: renderValue(trigger.request, inputs) as Record<string, unknown>,
    inputs,
    locks: lockOrder(trigger.locks.map((lock) => renderString(lock, inputs))),
    onComplete: trigger.onComplete.map((action) => {
      const whenState = action.whenState ? { whenState: action.whenState } : {};
      const key = renderString(action.key, inputs);
      if (action.op === "delete") return { op: "delete", key, ...whenState };
      return { op: "put", key, value: renderString(action.value, inputs), ...whenState };
    }),
  };
}
