// The NATS connection flags every command and process takes, as data: lib/transport turns them into an
// auth method and TLS files.
import type { OptionSpec } from "../../config/mod.ts";

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
