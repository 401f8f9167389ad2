import { z } from "zod";

export const FACT_OPERATORS = [">=", "<=", "<", ">", "!=", "==", "=~"] as const;
export type FactOperator = (typeof FACT_OPERATORS)[number];

export const factFilterSchema = z.looseObject({
  fact: z.string().min(1),
  operator: z.enum(FACT_OPERATORS),
  value: z.string().min(1),
});

// Go emits every array, but a nil slice marshals as `null` and older senders may leave keys out; all of
// those mean "no constraint", so they decode as empty arrays.
function list<T extends z.ZodType>(item: T) {
  return z
    .array(item)
    .nullish()
    .transform((value): z.output<T>[] => value ?? []);
}

export const filterSchema = z.looseObject({
  fact: list(factFilterSchema),
  cf_class: list(z.string()),
  agent: list(z.string()),
  identity: list(z.string()),
  compound: list(z.array(z.record(z.string(), z.unknown()))),
});

export type FactFilter = z.infer<typeof factFilterSchema>;
export type Filter = z.infer<typeof filterSchema>;

export function emptyFilter(): Filter {
  return { fact: [], cf_class: [], agent: [], identity: [], compound: [] };
}

/** A filter with all five arrays, in Go's key order, from any subset of them. */
export function normaliseFilter(partial: Partial<Filter> = {}): Filter {
  return {
    fact: (partial.fact ?? []).map((f) => ({ fact: f.fact, operator: f.operator, value: f.value })),
    cf_class: [...(partial.cf_class ?? [])],
    agent: [...(partial.agent ?? [])],
    identity: [...(partial.identity ?? [])],
    compound: (partial.compound ?? []).map((group) => group.map((term) => sortKeys(term))),
  };
}

/** True when the filter selects every node. */
export function isEmptyFilter(filter: Filter): boolean {
  return (
    filter.fact.length === 0 &&
    filter.cf_class.length === 0 &&
    filter.agent.length === 0 &&
    filter.identity.length === 0 &&
    filter.compound.length === 0
  );
}

// Compound terms are Go maps, which encoding/json writes with sorted keys.
function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortKeys) as T;
  if (value === null || typeof value !== "object") return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort())
    sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
  return sorted as T;
}
