// The NATS connection flags every command and process takes. They are data, here rather than beside the
// code in lib/transport that turns them into an auth method and TLS files, so that a command's `--help`
// and its option errors need neither the NATS client nor the schemas.
import type { OptionSpec } from "./options.ts";

/** The NATS auth options alone, for the commands that take no TLS options. */
export function natsAuthOptionSpecs(prefix = ""): OptionSpec[] {
  return [
    { flag: `${prefix}user`, kind: "string", help: "user name" },
    { flag: `${prefix}password`, kind: "string", help: "password (prefer the environment variable)" },
    { flag: `${prefix}token`, kind: "string", help: "auth token" },
    { flag: `${prefix}nkey-seed`, kind: "string", help: "nkey seed (SU...)" },
    { flag: `${prefix}credentials`, kind: "string", help: "path of a .creds file (JWT and nkey)" },
  ];
}

/** The NATS options every process takes, under an optional prefix (`federation-` for a broker side). */
export function natsOptionSpecs(prefix = "", what = "the NATS server"): OptionSpec[] {
  return [
    ...natsAuthOptionSpecs(prefix),
    { flag: `${prefix}tls-ca`, kind: "string", help: `CA bundle to verify ${what}` },
    { flag: `${prefix}tls-cert`, kind: "string", help: "client certificate" },
    { flag: `${prefix}tls-key`, kind: "string", help: "client key" },
  ];
}
