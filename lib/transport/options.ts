// The NATS connection options every command and process takes, in one place: the flags that name them,
// how they become an auth method and TLS files, and the schemas that validate them in a configuration.
import * as z from "zod/mini";
// For zod/mini's English messages (lib/protocol/zod-messages.ts).
import "../protocol/mod.ts";
import type { OptionSpec } from "../config/mod.ts";
import type { NatsAuth } from "./auth.ts";
import type { NatsTlsFiles } from "./node.ts";

export const natsAuthSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("none") }),
  z.object({ type: z.literal("userpass"), user: z.string().check(z.minLength(1)), pass: z.string() }),
  z.object({ type: z.literal("token"), token: z.string().check(z.minLength(1)) }),
  z.object({ type: z.literal("nkey"), seed: z.string().check(z.minLength(1)) }),
  z.object({ type: z.literal("credentials"), file: z.string().check(z.minLength(1)) }),
]);

export const natsTlsSchema = z.object({
  caFile: z.optional(z.string().check(z.minLength(1))),
  certFile: z.optional(z.string().check(z.minLength(1))),
  keyFile: z.optional(z.string().check(z.minLength(1))),
});

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

export type NatsConnectionChoice =
  | { ok: true; auth: NatsAuth; tls?: NatsTlsFiles }
  | { ok: false; error: string };

/** Auth and TLS from the options of natsOptionSpecs; naming two auth methods is an error, not a guess. */
export function natsConnectionChoice(
  str: (flag: string) => string | undefined,
  prefix = "",
): NatsConnectionChoice {
  const get = (name: string) => str(`${prefix}${name}`);
  const chosen: NatsAuth[] = [];
  const credentials = get("credentials");
  const seed = get("nkey-seed");
  const token = get("token");
  const user = get("user");
  if (credentials) chosen.push({ type: "credentials", file: credentials });
  if (seed) chosen.push({ type: "nkey", seed });
  if (token) chosen.push({ type: "token", token });
  if (user) chosen.push({ type: "userpass", user, pass: get("password") ?? "" });
  if (chosen.length > 1)
    return { ok: false, error: "choose one of user/password, token, nkey seed or credentials file" };
  const tls = { caFile: get("tls-ca"), certFile: get("tls-cert"), keyFile: get("tls-key") };
  return {
    ok: true,
    auth: chosen[0] ?? { type: "none" },
    ...(tls.caFile || tls.certFile || tls.keyFile ? { tls } : {}),
  };
}
