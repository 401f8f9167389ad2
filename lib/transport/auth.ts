import { type ConnectionOptions, credsAuthenticator, nkeyAuthenticator } from "@nats-io/nats-core";

/** How a client proves itself to nats-server. */
export type NatsAuth =
  | { type: "none" }
  | { type: "userpass"; user: string; pass: string }
  | { type: "token"; token: string }
  | { type: "nkey"; seed: string }
  /** A `.creds` file (user JWT and nkey seed); only where a file system is at hand. */
  | { type: "credentials"; file: string }
  /** The text of a `.creds` file, for runtimes without a file system. */
  | { type: "creds"; text: string };

export type LogFn = (
  level: "debug" | "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

const encoder = new TextEncoder();

/** Connection options for an auth method; `readFile` resolves credentials files where that is possible. */
export function authOptions(
  auth: NatsAuth = { type: "none" },
  readFile?: (path: string) => Uint8Array,
): Partial<ConnectionOptions> {
  switch (auth.type) {
    case "none":
      return {};
    case "userpass":
      return { user: auth.user, pass: auth.pass };
    case "token":
      return { token: auth.token };
    case "nkey":
      return { authenticator: nkeyAuthenticator(encoder.encode(auth.seed)) };
    case "creds":
      return { authenticator: credsAuthenticator(encoder.encode(auth.text)) };
    case "credentials":
      if (readFile === undefined)
        throw new Error(`credentials file ${auth.file} cannot be read in this runtime`);
      return { authenticator: credsAuthenticator(readFile(auth.file)) };
  }
}

/** A server URL fit for logs and seen-by: any user information is replaced by `redacted`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1redacted@");
}
