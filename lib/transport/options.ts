// The NATS connection options every command and process takes: how their flags become an auth method and
// TLS files, and the schemas that validate them in a configuration.
import * as z from "zod/mini";
// For zod/mini's English messages (lib/protocol/zod-messages.ts).
import "../protocol/mod.ts";
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

// The flags themselves are in ./flags, where `--help` reads them without this file's schemas.
export { natsAuthOptionSpecs, natsOptionSpecs } from "./flags/mod.ts";

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
