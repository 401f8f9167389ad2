// The gateway's callers and their keys, from one JSON document. Keys are imported once, when the registry
// is built; a request only looks its key up. Rotation is several entries with the same `caller`, each
// with its own id and validity window.
import * as z from "zod/mini";
import {
  type Bytes,
  base64Bytes,
  type CallerIdMapping,
  callerIdForKey,
  parsePem,
  utf8Bytes,
} from "../mod.ts";
import {
  type AsymmetricScheme,
  importHmacKey,
  importPublicKey,
  KEY_SCHEMES,
  type KeyScheme,
  MIN_HMAC_KEY_BYTES,
  type PublicKeyInput,
} from "./algorithms.ts";
import { digestBytes } from "./digest.ts";
import { type Policy, policySchema } from "./policy.ts";

/** Bearer tokens shorter than this are guessable; `choria-edge req --generate-key` makes 43 characters. */
const MIN_BEARER_TOKEN_LENGTH = 32;
const HASHED_TOKEN = /^sha256:([0-9a-f]{64})$/;
// Key ids travel in the `keyid` signature parameter and become the default Choria caller id.
const KEY_ID = /^[A-Za-z0-9_.-]{1,128}$/;
const CALLER_ID = /^[a-z]+=[\w.-]+$/;

const jwkSchema = z.looseObject({ kty: z.string() });

const gatewayKeySchema = z
  .strictObject({
    id: z.string().check(z.regex(KEY_ID, "a key id is 1-128 letters, digits, '_', '.' or '-'")),
    caller: z
      .string()
      .check(
        z.minLength(1),
        z.maxLength(128),
        z.describe("who owns the key, e.g. ci-bot; stable across rotation"),
      ),
    scheme: z.enum(KEY_SCHEMES),
    publicKey: z
      .optional(z.union([z.string().check(z.minLength(1)), jwkSchema]))
      .check(z.describe("ed25519 / ecdsa-p256-sha256: base64 raw key, SPKI PEM, or a public JWK")),
    secret: z
      .optional(z.string().check(z.minLength(1)))
      .check(z.describe("hmac-sha256: base64 of the key bytes; bearer: the token, or sha256:<hex> of it")),
    notBefore: z.optional(z.iso.datetime({ offset: true })),
    notAfter: z.optional(z.iso.datetime({ offset: true })),
    callerId: z
      .optional(
        z.string().check(z.regex(CALLER_ID, "a caller id is type=name, e.g. choria=ci-bot.mcollective")),
      )
      .check(z.describe("default: choria=<id>.mcollective")),
    policy: policySchema,
    callback: z
      .optional(z.looseObject({ kind: z.string() }))
      .check(
        z.describe(
          "where this key's async jobs report their end unless a request names its own; checked by the gateway",
        ),
      ),
  })
  .check(
    z.superRefine((key, ctx) => {
      const asymmetric = key.scheme === "ed25519" || key.scheme === "ecdsa-p256-sha256";
      if (asymmetric && key.publicKey === undefined)
        ctx.addIssue({ code: "custom", path: ["publicKey"], message: `${key.scheme} keys need a publicKey` });
      if (asymmetric && key.secret !== undefined)
        ctx.addIssue({ code: "custom", path: ["secret"], message: `${key.scheme} keys take no secret` });
      if (!asymmetric && key.secret === undefined)
        ctx.addIssue({ code: "custom", path: ["secret"], message: `${key.scheme} keys need a secret` });
      if (!asymmetric && key.publicKey !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["publicKey"],
          message: `${key.scheme} keys take no publicKey`,
        });
      if (key.notBefore && key.notAfter && Date.parse(key.notBefore) >= Date.parse(key.notAfter))
        ctx.addIssue({ code: "custom", path: ["notAfter"], message: "notAfter must be after notBefore" });
    }),
  );

const gatewayKeysSchema = z.strictObject({ keys: z.array(gatewayKeySchema) }).check(
  z.superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.keys.forEach((key, index) => {
      if (seen.has(key.id))
        ctx.addIssue({
          code: "custom",
          path: ["keys", index, "id"],
          message: `key id ${key.id} is used twice`,
        });
      seen.add(key.id);
    });
  }),
);

export type GatewayKeyConfig = z.input<typeof gatewayKeySchema>;

/** An authenticated key as the rest of the gateway sees it: no key material. */
export interface ResolvedKey {
  id: string;
  caller: string;
  scheme: KeyScheme;
  policy: Policy;
  /** The Choria caller id the gateway signs requests with for this key. */
  callerId: string;
  /** The default completion callback of the key's async jobs, as configured; the gateway validates it. */
  callback?: Record<string, unknown>;
  /** Validity window in epoch milliseconds, when the configuration limits it. */
  notBefore?: number;
  notAfter?: number;
}

/** What verification needs: a WebCrypto key for signatures, the token's SHA-256 for bearer keys. */
export type KeyMaterial =
  | { scheme: AsymmetricScheme | "hmac-sha256"; cryptoKey: CryptoKey }
  | { scheme: "bearer"; tokenHash: Bytes };

/** A configuration that cannot be used; `issues` are "path: message" lines, never secret values. */
export class KeyConfigError extends Error {
  override readonly name = "KeyConfigError";
  constructor(readonly issues: string[]) {
    super(`invalid gateway keys: ${issues.join("; ")}`);
  }
}

let materialOf: (registry: KeyRegistry, keyId: string) => KeyMaterial | undefined;

export class KeyRegistry {
  readonly #keys: ReadonlyMap<string, ResolvedKey>;
  readonly #material: ReadonlyMap<string, KeyMaterial>;

  static {
    materialOf = (registry, keyId) => registry.#material.get(keyId);
  }

  private constructor(keys: Map<string, ResolvedKey>, material: Map<string, KeyMaterial>) {
    this.#keys = keys;
    this.#material = material;
  }

  /**
   * Validates the configuration and imports every key. Throws KeyConfigError naming each bad field: this
   * runs at start-up, where refusing to start beats running with a key silently missing.
   */
  static async fromConfig(
    config: unknown,
    options: { callerIdMapping?: CallerIdMapping } = {},
  ): Promise<KeyRegistry> {
    const parsed = gatewayKeysSchema.safeParse(config);
    if (!parsed.success)
      throw new KeyConfigError(
        parsed.error.issues.map((issue) => `${issue.path.join(".") || "keys"}: ${issue.message}`),
      );
    const keys = new Map<string, ResolvedKey>();
    const material = new Map<string, KeyMaterial>();
    const issues: string[] = [];
    const bearerHashes = new Map<string, string>();
    for (const [index, entry] of parsed.data.keys.entries()) {
      const where = `keys.${index}`;
      let callerId = entry.callerId;
      if (callerId === undefined) {
        const derived = callerIdForKey(entry.id, options.callerIdMapping);
        if (!derived.ok) {
          issues.push(`${where}.id: ${derived.detail}; set callerId`);
          continue;
        }
        callerId = derived.callerid;
      }
      const loaded = await loadMaterial(entry, where);
      if (typeof loaded === "string") {
        issues.push(loaded);
        continue;
      }
      if (loaded.scheme === "bearer") {
        const hex = toHex(loaded.tokenHash);
        const other = bearerHashes.get(hex);
        if (other !== undefined) issues.push(`${where}.secret: the same token as key ${other}`);
        bearerHashes.set(hex, entry.id);
      }
      keys.set(entry.id, {
        id: entry.id,
        caller: entry.caller,
        scheme: entry.scheme,
        policy: entry.policy,
        callerId,
        ...(entry.callback === undefined ? {} : { callback: entry.callback }),
        ...(entry.notBefore === undefined ? {} : { notBefore: Date.parse(entry.notBefore) }),
        ...(entry.notAfter === undefined ? {} : { notAfter: Date.parse(entry.notAfter) }),
      });
      material.set(entry.id, loaded);
    }
    if (issues.length > 0) throw new KeyConfigError(issues);
    return new KeyRegistry(keys, material);
  }

  get(keyId: string): ResolvedKey | undefined {
    return this.#keys.get(keyId);
  }

  get size(): number {
    return this.#keys.size;
  }

  all(): ResolvedKey[] {
    return [...this.#keys.values()];
  }

  /** Bearer keys, for the one scheme where the request names no key. */
  bearerKeys(): ResolvedKey[] {
    return [...this.#keys.values()].filter((key) => key.scheme === "bearer");
  }
}

/** Key material for verification; deliberately not part of the module's public surface. */
export function keyMaterial(registry: KeyRegistry, keyId: string): KeyMaterial | undefined {
  return materialOf(registry, keyId);
}

/** Why a key cannot be used at `now` (epoch ms), or undefined when it is inside its validity window. */
export function keyValidityProblem(key: ResolvedKey, now: number): string | undefined {
  if (key.notBefore !== undefined && now < key.notBefore)
    return `key ${key.id} is not valid before ${new Date(key.notBefore).toISOString()}`;
  if (key.notAfter !== undefined && now > key.notAfter)
    return `key ${key.id} expired at ${new Date(key.notAfter).toISOString()}`;
  return undefined;
}

type ParsedKeyEntry = z.output<typeof gatewayKeySchema>;

async function loadMaterial(entry: ParsedKeyEntry, where: string): Promise<KeyMaterial | string> {
  const secret = entry.secret ?? "";
  switch (entry.scheme) {
    case "bearer": {
      const hashed = HASHED_TOKEN.exec(secret);
      if (hashed) return { scheme: "bearer", tokenHash: fromHex(hashed[1]!) };
      if (secret.length < MIN_BEARER_TOKEN_LENGTH)
        return `${where}.secret: a bearer token needs at least ${MIN_BEARER_TOKEN_LENGTH} characters`;
      return { scheme: "bearer", tokenHash: await digestBytes("sha-256", utf8Bytes(secret)) };
    }
    case "hmac-sha256": {
      const bytes = base64Bytes(secret);
      if (bytes === undefined) return `${where}.secret: an hmac-sha256 secret is base64 of the key bytes`;
      if (bytes.length < MIN_HMAC_KEY_BYTES)
        return `${where}.secret: an hmac-sha256 key needs at least ${MIN_HMAC_KEY_BYTES} bytes`;
      return { scheme: "hmac-sha256", cryptoKey: await importHmacKey(bytes) };
    }
    default: {
      const input = publicKeyInput(entry.publicKey!);
      if (typeof input === "string") return `${where}.publicKey: ${input}`;
      try {
        return { scheme: entry.scheme, cryptoKey: await importPublicKey(entry.scheme, input) };
      } catch (err) {
        return `${where}.publicKey: not a ${entry.scheme} public key (${err instanceof Error ? err.message : String(err)})`;
      }
    }
  }
}

function publicKeyInput(value: string | JsonWebKey): PublicKeyInput | string {
  if (typeof value !== "string") {
    if ("d" in value) return "this JWK holds a private key; configure only its public part";
    return { format: "jwk", jwk: value };
  }
  if (value.includes("-----BEGIN")) {
    const pem = parsePem(value);
    if (!pem.ok) return pem.error;
    const block = pem.value.find((b) => b.label === "PUBLIC KEY");
    if (block === undefined) return "expected a PUBLIC KEY (SPKI) PEM block";
    return { format: "spki", bytes: block.der };
  }
  const bytes = base64Bytes(value);
  if (bytes === undefined) return "expected base64 of the raw key, an SPKI PEM, or a JWK";
  return { format: "raw", bytes };
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Bytes {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}
