// Operator-mode NATS for tests of `.creds` logins: an operator, one account and one user, as signed JWTs
// (ed25519 nkeys, the encoding nats-server decodes), with the server configuration that trusts them.
import { nkeys } from "@nats-io/nats-core";

type KeyPair = ReturnType<typeof nkeys.createOperator>;

const encoder = new TextEncoder();
const base64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");

function signJwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const header = base64url(encoder.encode(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })));
  const claims = {
    jti: crypto.randomUUID().replaceAll("-", "").toUpperCase(),
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  const body = `${header}.${base64url(encoder.encode(JSON.stringify(claims)))}`;
  return `${body}.${base64url(issuer.sign(encoder.encode(body)))}`;
}

const NO_LIMITS = { subs: -1, data: -1, payload: -1 };

export interface OperatorMode {
  /** Appended to the nats-server configuration. */
  serverConfig: string;
  /** The user's `.creds` file text. */
  creds: string;
}

export function operatorMode(): OperatorMode {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const user = nkeys.createUser();
  const operatorJwt = signJwt(operator, operator.getPublicKey(), "test-operator", { type: "operator" });
  const accountJwt = signJwt(operator, account.getPublicKey(), "test-account", {
    type: "account",
    limits: { ...NO_LIMITS, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 },
  });
  const userJwt = signJwt(account, user.getPublicKey(), "test-user", {
    type: "user",
    pub: {},
    sub: {},
    ...NO_LIMITS,
  });
  const seed = new TextDecoder().decode(user.getSeed());
  return {
    serverConfig: [
      `operator: ${operatorJwt}`,
      "resolver: MEMORY",
      `resolver_preload: { ${account.getPublicKey()}: ${accountJwt} }`,
    ].join("\n"),
    creds: [
      "-----BEGIN NATS USER JWT-----",
      userJwt,
      "------END NATS USER JWT------",
      "",
      "-----BEGIN USER NKEY SEED-----",
      seed,
      "------END USER NKEY SEED------",
      "",
    ].join("\n"),
  };
}
