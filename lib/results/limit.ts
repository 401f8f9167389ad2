/**
 * How many of the discovered nodes a request goes to, as `choria req --limit` takes it: a count (`10`) or
 * a share of the discovered nodes (`10%`).
 */
export type Limit = { kind: "count"; count: number } | { kind: "percent"; percent: number };

/** Which nodes a limit keeps: the first in discovery order (Choria's default), or a random sample. */
export type LimitMethod = "first" | "random";

const LIMIT = /^(\d{1,9})(%?)$/;

/** Parses `10`, `"10"` or `"10%"`; undefined for anything else, including zero and percentages over 100. */
export function parseLimit(value: number | string): Limit | undefined {
  const match = LIMIT.exec(String(value));
  if (!match) return undefined;
  const amount = Number(match[1]);
  if (amount === 0) return undefined;
  if (match[2] === "%") return amount <= 100 ? { kind: "percent", percent: amount } : undefined;
  return { kind: "count", count: amount };
}

/** The number of nodes a limit leaves of `available`; a share rounds down, as go-choria's does. */
export function limitSize(limit: Limit | undefined, available: number): number {
  if (limit === undefined) return available;
  if (limit.kind === "count") return Math.min(limit.count, available);
  return Math.floor((available * limit.percent) / 100);
}

/**
 * The targets a limit keeps, in the order they go out. `random` draws a uniform sample (Fisher-Yates on a
 * copy) with the given source of randomness, so tests can pin it.
 */
export function limitTargets(
  targets: readonly string[],
  limit: Limit | undefined,
  method: LimitMethod = "first",
  random: () => number = Math.random,
): string[] {
  const size = limitSize(limit, targets.length);
  if (method === "first" || size === targets.length) return targets.slice(0, size);
  const pool = [...targets];
  for (let i = 0; i < size; i++) {
    const pick = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[pick]] = [pool[pick]!, pool[i]!];
  }
  return pool.slice(0, size);
}

/** Drops repeated identities, keeping the first of each, so a node is never asked twice. */
export function uniqueTargets(targets: readonly string[]): string[] {
  return [...new Set(targets)];
}
