/*
 * Key layout of a data bucket; one KV bucket serves data and locks:
 *
 *   data.<key>    a value of the data store
 *   lock.<name>   a lock record (JSON, see locks.ts)
 *
 * Keys and lock names are made of tokens of letters, digits and `_-/=` joined by single dots. They are
 * used in the KV key as they are: a dot stays a NATS token separator, so `app.deploy` is stored as
 * `data.app.deploy` and a scan of `data.app.>` finds it. Nothing is escaped, so no two keys can ever map to
 * the same KV key; anything else (spaces, `*`, `>`, empty tokens, a leading or trailing dot) is refused.
 */

const KEY_PATTERN = /^[A-Za-z0-9_\-/=]+(?:\.[A-Za-z0-9_\-/=]+)*$/;
/** Long enough for paths and ids, short enough to keep the subject small in every message header. */
export const MAX_KEY_LENGTH = 256;

/** A data key or lock name that the store refuses; nothing was read or written. */
export class InvalidKey extends Error {
  override readonly name = "InvalidKey";

  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`invalid key ${JSON.stringify(key.slice(0, MAX_KEY_LENGTH))}: ${reason}`);
  }
}

export function dataKey(key: string): string {
  return `data.${checkedKey(key)}`;
}

export function lockKey(name: string): string {
  return `lock.${checkedKey(name)}`;
}

function checkedKey(key: string): string {
  if (typeof key !== "string" || key.length === 0) throw new InvalidKey(String(key), "empty");
  if (key.length > MAX_KEY_LENGTH) throw new InvalidKey(key, `longer than ${MAX_KEY_LENGTH} characters`);
  if (!KEY_PATTERN.test(key))
    throw new InvalidKey(
      key,
      "use letters, digits and _-/= in tokens joined by single dots (no empty token, no leading or trailing dot)",
    );
  return key;
}
