import { readFileSync } from "node:fs";
import {
  type AuthDeps,
  authenticate,
  type GatewayKeyConfig,
  generateHttpKey,
  type HttpRequestParts,
  type KeyFile,
  KeyRegistry,
  MemoryReplayStore,
  type Policy,
  type SigningKey,
  type SignRequestOptions,
  signHttpRequest,
} from "../../../../lib/security/http/mod.ts";

export interface AppendixB {
  keys: Record<string, { scheme: string; publicKey?: string; privateKey?: string; secret?: string }>;
  created: number;
  requests: Record<string, { method: string; url: string; headers: Record<string, string>; body: string }>;
  requestVectors: {
    section: string;
    request: string;
    key: string | null;
    signatureInput: string;
    signature?: string;
    signatureBase: string;
    deterministic?: boolean;
  }[];
  responseVectors: {
    section: string;
    key: string;
    body: string;
    contentDigest: string;
    signature: string;
    signatureBase: string;
  }[];
  rfc9530: { body: string; "sha-256": string; "sha-512": string };
}

export const appendixB: AppendixB = JSON.parse(
  readFileSync(new URL("../../../fixtures/http/rfc9421-appendix-b.json", import.meta.url), "utf8"),
);

export const ALLOW_DEMO: Policy = {
  clusters: ["*"],
  collectives: ["*"],
  agents: ["*"],
  actions: ["*#*"],
};

export const GATEWAY_URL = "https://gateway.example/v1/rpc";
export const BODY = '{"agent":"rpcutil","action":"ping","cluster":"C1"}';

/** One generated key of every scheme, the registry that knows them, and the caller-side signing keys. */
export async function keyring(policy: Policy = ALLOW_DEMO) {
  const schemes = ["ed25519", "ecdsa-p256-sha256", "hmac-sha256", "bearer"] as const;
  const generated = await Promise.all(
    schemes.map((scheme) =>
      generateHttpKey({ id: `${scheme}-1`, caller: `${scheme}-caller`, scheme, policy }),
    ),
  );
  const configs: GatewayKeyConfig[] = generated.map((g) => g.config);
  const registry = await KeyRegistry.fromConfig({ keys: configs });
  const signing = Object.fromEntries(
    generated.map((g) => [g.keyFile.scheme, signingKeyOf(g.keyFile)]),
  ) as Record<(typeof schemes)[number], SigningKey>;
  return { registry, signing, configs };
}

export function signingKeyOf(file: KeyFile): SigningKey {
  if (file.scheme === "bearer" || file.scheme === "hmac-sha256")
    return { id: file.id, scheme: file.scheme, secret: file.secret! };
  return { id: file.id, scheme: file.scheme, privateKey: file.privateKey! };
}

/** A request to the gateway URL signed with `key`, as the gateway would receive it. */
export async function signedRequest(
  key: SigningKey,
  overrides: Partial<SignRequestOptions> = {},
): Promise<HttpRequestParts> {
  const body = new TextEncoder().encode(typeof overrides.body === "string" ? overrides.body : BODY);
  const options: SignRequestOptions = {
    method: "POST",
    url: GATEWAY_URL,
    headers: { "content-type": "application/json" },
    ...overrides,
    body,
    key,
  };
  const headers = await signHttpRequest(options);
  return { method: options.method, url: options.url, headers, body };
}

export function deps(registry: KeyRegistry, extra: Partial<AuthDeps> = {}): AuthDeps {
  return { keys: registry, replay: new MemoryReplayStore(), ...extra };
}

export { authenticate };
