// The NATS flags of trace, observe and data, with their usage lines: data that `--help` reads without the
// NATS client (local-stack.ts turns the flags into a connection once the arguments are read).
import { natsOptionSpecs } from "../lib/transport/flags/mod.ts";

/** The broker's NATS flags, and the inbox prefix a server's permissions may ask for. */
export const NATS_CLIENT_OPTIONS = [
  ...natsOptionSpecs(),
  { flag: "inbox-prefix", kind: "string", help: "subject prefix of request replies instead of _INBOX" },
] as const;

export const NATS_CLIENT_USAGE = `  --user <name> --password <pw> | --token <t> | --credentials <file> | --nkey-seed <seed>
  --tls-ca <file> --tls-cert <file> --tls-key <file>   TLS: the servers' CA, a client certificate
  --inbox-prefix <prefix>                             reply subjects instead of _INBOX
                        (default, with the local stack of 'stack --topology ha': its gateway role's)`;
