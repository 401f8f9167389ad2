// What `choria-edge req` does once its arguments are read (cli/req.ts reads them), and the signed-request
// helpers `choria-edge jobs` shares.
import { writeFile } from "node:fs/promises";
import type { StackFile } from "../infra/stack-file.ts";
import { FileProblem, readNamedFile } from "../lib/config/mod.ts";
import { errorText } from "../lib/log/mod.ts";
import { parseFactFilterString } from "../lib/protocol/mod.ts";
import {
  generateHttpKey,
  KEY_SCHEMES,
  type KeyScheme,
  type SigningKey,
  signHttpRequest,
  signingKeyFromText,
} from "../lib/security/http/mod.ts";
import type { CommandArgs } from "./args.ts";
import { type GatewayAnswer, send } from "./http.ts";
import { localStack } from "./local-stack.ts";
import type { REQ_OPTIONS, ReqIo, ReqValues } from "./req.ts";

const STATUS_NAMES = ["OK", "Aborted", "Unknown Action", "Missing Data", "Invalid Data", "Unknown Error"];

/** The request the parsed command line describes, sent; or the key it asks for, made. */
export async function sendRequest(args: CommandArgs<typeof REQ_OPTIONS>, io: ReqIo): Promise<number> {
  const { values, positionals } = args;
  const usageError = (message: string) => {
    io.stderr.write(`choria-edge req: ${message}\n`);
    return 2;
  };
  const keyId = values["key-id"] ?? process.env.CHORIA_EDGE_REQ_KEY_ID;
  if (values["generate-key"]) {
    const keyPath = values.key ?? process.env.CHORIA_EDGE_REQ_KEY;
    if (keyPath === undefined) return usageError("--generate-key needs --key <file> to write");
    return generateKey(values, keyPath, keyId, io);
  }
  const stack = localStack(io.stderr);
  const [agent, action, ...inputs] = positionals;
  if (agent === undefined || action === undefined) return usageError("name an agent and an action");
  const body = requestBody(agent, action, inputs, values, stack?.cluster);
  if (typeof body === "string") return usageError(body);
  const fields = values.fields
    ?.split(",")
    .map((f) => f.trim())
    .filter(Boolean);
  const caller = await gatewayCaller("req", values, stack, io);
  if (typeof caller === "number") return caller;

  const format = values.json ? "json" : "ndjson";
  const response = await signedFetch("req", caller, io, "POST", "/v1/rpc", {
    accept: format === "json" ? "application/json" : "application/x-ndjson",
    body,
  });
  if (response === undefined) return 1;
  if (!response.ok) return reportProblem("req", response, io);
  // A gateway (or a proxy in front of it) may answer with the whole document instead of a stream.
  const answeredJson = response.headers.get("content-type")?.startsWith("application/json") === true;
  if (format === "json" || answeredJson) {
    const document = (await response.json()) as GatewayResult;
    if (format === "json") io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    else if (values.jsonl) io.stdout.write(`${JSON.stringify(document)}\n`);
    else io.stdout.write(renderTable(document.replies ?? [], document, fields));
    return exitCode(document);
  }
  return followStream(response, values.jsonl === true, io, fields);
}

/** Where a signed request goes and the key that signs it. */
export interface GatewayCaller {
  /** Base URL without a trailing slash. */
  gateway: string;
  key: SigningKey;
}

/**
 * The gateway and the caller's key, from the flags, else the CHORIA_EDGE_REQ_* environment, else the
 * local stack's; or the exit code after saying what is missing.
 */
export async function gatewayCaller(
  command: string,
  values: { gateway?: string | undefined; key?: string | undefined; "key-id"?: string | undefined },
  stack: StackFile | undefined,
  io: ReqIo,
): Promise<GatewayCaller | number> {
  const usageError = (message: string) => {
    io.stderr.write(`choria-edge ${command}: ${message}\n`);
    return 2;
  };
  const keyPath = values.key ?? process.env.CHORIA_EDGE_REQ_KEY ?? stack?.keys.caller;
  if (keyPath === undefined)
    return usageError(
      "--key <file> is required (no local stack is running, whose demo caller key would be the default)",
    );
  let keyText: string;
  try {
    keyText = await readNamedFile(keyPath, {
      what: "key file",
      made:
        keyPath === stack?.keys.caller
          ? "npm start makes the demo caller key"
          : `'choria-edge req --generate-key --key-id <id> --key ${keyPath}' makes one (then add the entry it prints to the gateway's keys)`,
      instead: values.key === undefined ? "--key" : undefined,
    });
  } catch (err) {
    if (err instanceof FileProblem) return usageError(err.message);
    throw err;
  }
  const key = await signingKeyFromText(keyText, values["key-id"] ?? process.env.CHORIA_EDGE_REQ_KEY_ID);
  if (!key.ok) return usageError(`${keyPath}: ${key.error}`);
  const gateway = (
    values.gateway ??
    process.env.CHORIA_EDGE_REQ_GATEWAY ??
    stack?.gateway_url ??
    "http://127.0.0.1:8080"
  ).replace(/\/+$/, "");
  return { gateway, key: key.key };
}

/**
 * Signs and sends one request to the gateway (a JSON body when given); undefined, said on stderr, when
 * no answer came.
 */
export async function signedFetch(
  command: string,
  caller: GatewayCaller,
  io: ReqIo,
  method: string,
  path: string,
  options: { accept: string; body?: unknown; headers?: Record<string, string> },
): Promise<GatewayAnswer | undefined> {
  const url = `${caller.gateway}${path}`;
  const bytes =
    options.body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(options.body));
  const headers = await signHttpRequest({
    method,
    url,
    headers: {
      ...options.headers,
      accept: options.accept,
      ...(bytes === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(bytes === undefined ? {} : { body: bytes }),
    key: caller.key,
  });
  try {
    return await send(url, { method, headers, ...(bytes === undefined ? {} : { body: bytes }) });
  } catch (err) {
    io.stderr.write(`choria-edge ${command}: ${url}: ${errorText(err)}\n`);
    return undefined;
  }
}

/** The POST /v1/rpc body, or what is wrong with the command line. Only fields the caller set are sent. */
export function requestBody(
  agent: string,
  action: string,
  inputs: readonly string[],
  values: ReqValues,
  stackCluster?: string,
): Record<string, unknown> | string {
  const data: Record<string, unknown> = {};
  for (const input of inputs) {
    const equals = input.indexOf("=");
    if (equals <= 0) return `input ${JSON.stringify(input)} is not key=value or key:=json`;
    if (input[equals - 1] === ":") {
      try {
        data[input.slice(0, equals - 1)] = JSON.parse(input.slice(equals + 1));
      } catch {
        return `input ${JSON.stringify(input)}: the value after := is not JSON`;
      }
    } else {
      data[input.slice(0, equals)] = input.slice(equals + 1);
    }
  }
  const facts = [];
  for (const text of values["filter-fact"] ?? []) {
    const fact = parseFactFilterString(text);
    if (fact === undefined) return `--filter-fact ${JSON.stringify(text)} is not a fact filter`;
    facts.push(fact);
  }
  const filter: Record<string, unknown> = {};
  if (facts.length > 0) filter.fact = facts;
  if (values["filter-class"]?.length) filter.class = values["filter-class"];
  if (values["filter-agent"]?.length) filter.agent = values["filter-agent"];
  if (values.identity?.length) filter.identity = values.identity;
  if (values.compound !== undefined) filter.compound = values.compound;

  const body: Record<string, unknown> = {
    agent,
    action,
    data,
    cluster: values.cluster ?? process.env.CHORIA_EDGE_REQ_CLUSTER ?? stackCluster ?? "mcollective",
  };
  if (values.collective !== undefined) body.collective = values.collective;
  if (Object.keys(filter).length > 0) body.filter = filter;
  if (values.nodes !== undefined) body.nodes = values.nodes.split(",").filter(Boolean);
  if (values.broadcast) body.mode = "broadcast";
  if (values.limit !== undefined)
    body.limit = /^\d+$/.test(values.limit) ? Number(values.limit) : values.limit;
  for (const [flag, field] of [
    ["timeout", "timeout"],
    ["discovery-timeout", "discovery_timeout"],
    ["expect", "expect"],
  ] as const) {
    const text = values[flag];
    if (text === undefined) continue;
    const number = Number(text);
    if (!Number.isFinite(number) || number < 0) return `--${flag} needs a number`;
    body[field] = number;
  }
  return body;
}

async function generateKey(
  values: ReqValues,
  keyPath: string,
  keyId: string | undefined,
  io: ReqIo,
): Promise<number> {
  if (keyId === undefined) {
    io.stderr.write("choria-edge req: --generate-key needs --key-id\n");
    return 2;
  }
  const scheme = values.scheme ?? "ed25519";
  if (!(KEY_SCHEMES as readonly string[]).includes(scheme)) {
    io.stderr.write(`choria-edge req: --scheme must be one of ${KEY_SCHEMES.join(", ")}\n`);
    return 2;
  }
  const generated = await generateHttpKey({
    id: keyId,
    caller: values.caller ?? keyId,
    scheme: scheme as KeyScheme,
  });
  try {
    await writeFile(keyPath, `${JSON.stringify(generated.keyFile, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  } catch (err) {
    io.stderr.write(`choria-edge req: cannot create ${keyPath}: ${(err as Error).message}\n`);
    return 1;
  }
  io.stdout.write(`${JSON.stringify(generated.config, null, 2)}\n`);
  io.stderr.write(
    `wrote ${keyPath} (mode 0600). Add the entry above to the gateway's keys and fill in its policy.${
      scheme === "hmac-sha256" ? " The entry holds the shared secret: keep the keys document private." : ""
    }\n`,
  );
  return 0;
}

interface ReplyEvent {
  identity?: unknown;
  statuscode?: unknown;
  statusmsg?: unknown;
  data?: unknown;
  ms?: unknown;
}

interface GatewayResult {
  summary?: Record<string, unknown>;
  replies?: ReplyEvent[];
  no_reply?: unknown;
}

/** Reads the ndjson stream, keeping a progress line on a terminal, then prints the table. */
async function followStream(
  response: GatewayAnswer,
  echo: boolean,
  io: ReqIo,
  fields: readonly string[] | undefined,
): Promise<number> {
  const progress = io.stderr.isTTY === true && !echo;
  const replies: ReplyEvent[] = [];
  let expected: number | null = null;
  let final: (GatewayResult & { type?: string }) | undefined;
  let failure: Record<string, unknown> | undefined;
  let ok = 0;
  const started = Date.now();
  const showProgress = () => {
    if (!progress) return;
    const of = expected === null ? "" : `/${expected}`;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    io.stderr.write(
      `\r\x1b[Kreplies ${replies.length}${of}  ok ${ok}  failed ${replies.length - ok}  ${seconds}s`,
    );
  };
  for await (const line of lines(response)) {
    if (echo) io.stdout.write(`${line}\n`);
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    // Unknown event types and fields are skipped: the gateway may add them without breaking this client.
    if (event.type === "start") expected = typeof event.expected === "number" ? event.expected : null;
    else if (event.type === "reply") {
      replies.push(event);
      if (event.statuscode === 0) ok++;
    } else if (event.type === "summary") final = event;
    else if (event.type === "error") failure = event;
    showProgress();
  }
  if (progress) io.stderr.write("\r\x1b[K");
  if (failure !== undefined) {
    io.stderr.write(
      `choria-edge req: ${String(failure.title ?? "error")}: ${String(failure.detail ?? "")}\n`,
    );
    return 1;
  }
  if (final === undefined) {
    io.stderr.write("choria-edge req: the stream ended without a summary\n");
    return 1;
  }
  if (!echo) io.stdout.write(renderTable(replies, final, fields));
  return exitCode({ ...final, replies });
}

async function* lines(response: GatewayAnswer): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of response.body) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf("\n");
    while (newline !== -1) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line !== "") yield line;
      newline = pending.indexOf("\n");
    }
  }
  pending += decoder.decode();
  if (pending.trim() !== "") yield pending.trim();
}

/** The replies sorted by identity, then the silent nodes, then one summary line. */
export function renderTable(
  replies: readonly ReplyEvent[],
  result: GatewayResult,
  fields?: readonly string[],
): string {
  const rows: string[][] = replies
    .map((reply) => [
      String(reply.identity ?? "?"),
      statusName(reply.statuscode),
      String(reply.statusmsg ?? ""),
      typeof reply.ms === "number" ? String(Math.round(reply.ms)) : "",
      dataCell(reply.data, fields),
    ])
    .sort((a, b) => a[0]!.localeCompare(b[0]!));
  for (const identity of silentNodes(result)) rows.push([identity, "no reply", "", "", ""]);
  const header = ["identity", "status", "statusmsg", "ms", "data"];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const format = (row: string[]) =>
    row
      .map((cell, column) => (column === 3 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join("  ")
      .trimEnd();
  const summary = result.summary ?? {};
  // Conflicts only when there are some: a node answering twice differently is rare and worth a look.
  const facts = ["ok", "failed", "no_reply", "unexpected", "conflicts"]
    .filter((name) => typeof summary[name] === "number" && (name !== "conflicts" || summary[name] > 0))
    .map((name) => `${name.replace("_", " ")} ${summary[name]}`);
  const elapsed = typeof summary.elapsed_ms === "number" ? ` in ${Math.round(summary.elapsed_ms)} ms` : "";
  const done = typeof summary.done === "string" ? `, done: ${summary.done}` : "";
  const lines = [
    format(header),
    ...rows.map(format),
    "",
    `${replies.length} replies: ${facts.join(", ")}${done}${elapsed}`,
  ];
  return `${lines.join("\n")}\n`;
}

/** Longest value shown for one field (one the caller chose in --fields), and for the default data cell. */
const VALUE_WIDTH = 40;
const CHOSEN_WIDTH = 80;
const CELL_WIDTH = 120;

/**
 * A reply's data on one line. By default its scalar fields as `name=value` and, for the rest, their size
 * (`agents=[4]`, `facts={9}`) after them, so that `rpcutil inventory` shows something without a wall of JSON. With
 * fields: those fields (dotted paths reach into objects and arrays), each value as compact JSON.
 */
export function dataCell(data: unknown, fields?: readonly string[]): string {
  if (data === undefined || data === null) return "";
  if (typeof data !== "object" || Array.isArray(data)) return clip(compact(data), CELL_WIDTH);
  if (fields !== undefined && fields.length > 0)
    return fields.map((path) => `${path}=${clip(compact(lookup(data, path)), CHOSEN_WIDTH)}`).join(" ");
  const entries = Object.entries(data as Record<string, unknown>)
    // Scalars first: they are what fits on a line; containers follow with their size only.
    .sort(([, a], [, b]) => Number(isContainer(a)) - Number(isContainer(b)))
    .map(([name, value]) => `${name}=${summary(value)}`);
  return clip(entries.join(" "), CELL_WIDTH);
}

function isContainer(value: unknown): boolean {
  return value !== null && typeof value === "object";
}

function summary(value: unknown): string {
  if (Array.isArray(value)) return `[${value.length}]`;
  if (value !== null && typeof value === "object") return `{${Object.keys(value).length}}`;
  return clip(compact(value), VALUE_WIDTH);
}

/** Strings bare unless they hold a space or are empty; everything else as JSON. */
function compact(value: unknown): string {
  if (value === undefined) return "-";
  if (typeof value === "string") return value === "" || /[\s"]/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

function lookup(data: unknown, path: string): unknown {
  let value = data;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

function statusName(code: unknown): string {
  return typeof code === "number" ? (STATUS_NAMES[code] ?? `status ${code}`) : "?";
}

function silentNodes(result: GatewayResult): string[] {
  return Array.isArray(result.no_reply)
    ? result.no_reply.filter((n): n is string => typeof n === "string")
    : [];
}

function exitCode(result: GatewayResult): number {
  const replies = result.replies ?? [];
  const failed = replies.some((reply) => reply.statuscode !== 0);
  return failed || silentNodes(result).length > 0 ? 1 : 0;
}

/** Says what problem the gateway answered with; exit code 1. */
export async function reportProblem(command: string, response: GatewayAnswer, io: ReqIo): Promise<number> {
  const text = await response.text();
  let message = `${response.status} ${response.statusText}`;
  try {
    const problem = JSON.parse(text) as { title?: unknown; detail?: unknown; errors?: unknown };
    message = `${response.status} ${String(problem.title ?? response.statusText)}: ${String(problem.detail ?? "")}`;
    if (Array.isArray(problem.errors))
      for (const error of problem.errors as { field?: unknown; detail?: unknown }[])
        message += `\n  ${String(error.field ?? "")}: ${String(error.detail ?? "")}`;
  } catch {
    if (text !== "") message += `: ${text.slice(0, 500)}`;
  }
  io.stderr.write(`choria-edge ${command}: ${message}\n`);
  return 1;
}
