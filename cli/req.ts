// `choria-edge req`: signs one RPC request for the edge gateway and shows the replies as they stream in.
// `--generate-key` makes a caller key (a key file for this command, a config entry for the gateway).
// This module holds only the usage and options: `req --help` (and a mistyped flag) answer without loading
// the signing code, the protocol's schemas and re2js, which req-run.ts imports.
import type { OptionValues } from "../lib/config/mod.ts";
import { commandArgs } from "./args.ts";

// The schemes are spelled out rather than read from lib/security/http, whose surface builds its schemas on
// import; test/unit/cli/req-usage.test.ts keeps the list equal to KEY_SCHEMES.
export const REQ_USAGE = `usage: choria-edge req <agent> <action> [key=value | key:=json ...] [options]
       choria-edge req --generate-key --key-id <id> --key <file> [--scheme <scheme>] [--caller <name>]

Signs a request (RFC 9421 HTTP Message Signature, or a bearer token) and sends it to the edge
gateway's POST /v1/rpc. Replies stream in with a progress line on a terminal, then a table.

  --gateway <url>          gateway base URL (env CHORIA_EDGE_REQ_GATEWAY; default: the local stack's,
                           else http://127.0.0.1:8080)
  --key <file>             key file: JSON from --generate-key, a private JWK, or a PKCS#8 PEM
                           (env CHORIA_EDGE_REQ_KEY; default: the local stack's demo caller key)
  --key-id <id>            the key's id at the gateway (env CHORIA_EDGE_REQ_KEY_ID; default: the file's)
  --cluster <name>         federation cluster (env CHORIA_EDGE_REQ_CLUSTER; default: the local stack's,
                           else mcollective)
  --collective <name>      member collective (default: the cluster's first)
  --filter-fact <f>        fact filter, e.g. country=nl or memory>=4 (repeatable)
  --filter-class <c>       class filter (repeatable)
  --filter-agent <a>       agent filter (repeatable)
  --identity <id>          identity filter, or /regex/ (repeatable)
  --compound <expr>        compound filter expression
  --nodes <a,b,...>        send to these nodes instead of discovering
  --limit <N|N%>           send to at most N (or N%) of the targets
  --broadcast              skip discovery (nodes that stay silent are then unknown)
  --expect <N>             replies that complete the request
  --timeout <s>            seconds to wait for replies
  --discovery-timeout <s>  longest discovery, in seconds
  --fields <a,b,...>       reply data fields to show in the table (dotted paths reach inside:
                           facts.role); default: the short scalar fields, and a size for the rest
  --json                   print the gateway's final JSON document
  --jsonl                  print the stream, one JSON event per line

"The local stack's" defaults come from $CHORIA_EDGE_HOME/stack.json while a stack runs.

Inputs: key=value sends a string, key:=json sends a JSON value (key:=3, key:=true, key:='["a"]').

Key generation writes the key file with mode 0600 (never over an existing file) and prints the entry
to add to the gateway's keys document; its policy is empty, which allows nothing until you fill it in.
  --scheme <s>             ed25519 | ecdsa-p256-sha256 | hmac-sha256 | bearer (default ed25519)
  --caller <name>          who owns the key (default: the key id)`;

export const REQ_OPTIONS = [
  { flag: "gateway", kind: "string" },
  { flag: "key", kind: "string" },
  { flag: "key-id", kind: "string" },
  { flag: "cluster", kind: "string" },
  { flag: "collective", kind: "string" },
  { flag: "filter-fact", kind: "multiple" },
  { flag: "filter-class", kind: "multiple" },
  { flag: "filter-agent", kind: "multiple" },
  { flag: "identity", kind: "multiple" },
  { flag: "compound", kind: "string" },
  { flag: "nodes", kind: "string" },
  { flag: "limit", kind: "string" },
  { flag: "broadcast", kind: "bool" },
  { flag: "expect", kind: "string" },
  { flag: "timeout", kind: "string" },
  { flag: "discovery-timeout", kind: "string" },
  { flag: "json", kind: "bool" },
  { flag: "jsonl", kind: "bool" },
  { flag: "fields", kind: "string" },
  { flag: "generate-key", kind: "bool" },
  { flag: "scheme", kind: "string" },
  { flag: "caller", kind: "string" },
] as const;

export type ReqValues = OptionValues<typeof REQ_OPTIONS>;

interface Output {
  write(text: string): unknown;
}

export interface ReqIo {
  stdout: Output;
  stderr: Output & { isTTY?: boolean };
}

/** Exit codes: 0 every target answered OK, 1 some failed or stayed silent or the gateway refused, 2 usage. */
export async function runReq(
  argv: string[],
  io: ReqIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const args = commandArgs("req", REQ_USAGE, REQ_OPTIONS, argv, io);
  if (typeof args === "number") return args;
  const { sendRequest } = await import("./req-run.ts");
  return sendRequest(args, io);
}
