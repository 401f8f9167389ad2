// 10,000 malformed HTTP requests at a gateway process (nesting, sizes, encodings, chunking, aborts) over
// raw sockets, with well-formed ones among them: every request the client finishes is answered with a 4xx
// (never a 5xx, a silent close or a hang), the well-formed ones are answered by every node, and the
// gateway is still healthy at the end. A request the client abandons, or whose answer a TCP reset ate
// while the client was still sending, owes no answer; both are counted.
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { signHttpRequest } from "../../lib/security/http/mod.ts";
import {
  CLUSTER,
  type Federation,
  signedInit,
  startFederation,
  type TestKeys,
  testKeys,
} from "../integration/gateway/support.ts";
import { emptyRow, type Row, type Scope, until } from "./support.ts";

const NODE_COUNT = 5;
const CONCURRENCY = 16;
const encoder = new TextEncoder();

interface Spec {
  kind: string;
  chunks: (string | Uint8Array)[];
  /** The client gives up mid-request: no answer is owed. */
  abort?: "destroy" | "end";
}

/**
 * `reset while sending`: the server answered before the client had sent everything and closed, so the
 * client's next write drew a reset that can discard the answer before it is read (TCP, not the gateway).
 */
type Answer =
  | { status: number }
  | { status: null; why: "aborted" | "reset while sending" | "closed" | "timeout" };

/** Writes the chunks to a fresh connection and reads the status line of the answer, if any. */
function rawRequest(port: number, spec: Spec, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let head = "";
    let done = false;
    let sentAll = false;
    const finish = (answer: Answer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish({ status: null, why: "timeout" }), timeoutMs);
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      head += chunk.toString("latin1");
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (match) finish({ status: Number(match[1]) });
    });
    socket.on("close", () =>
      finish({ status: null, why: spec.abort ? "aborted" : sentAll ? "closed" : "reset while sending" }),
    );
    socket.once("connect", async () => {
      for (const chunk of spec.chunks) {
        if (done || socket.destroyed) return;
        const flushed = socket.write(chunk);
        if (!flushed) await new Promise((r) => socket.once("drain", r));
      }
      sentAll = true;
      if (spec.abort === "destroy") finish({ status: null, why: "aborted" });
      else if (spec.abort === "end") socket.end();
    });
  });
}

const nested = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;
const call = (data: string) => `{"cluster":"${CLUSTER}","agent":"rpcutil","action":"ping","data":${data}}`;

function kinds(host: string, keys: TestKeys): ((i: number) => Promise<Spec> | Spec)[] {
  const url = `http://${host}/v1/rpc`;
  const head = (lines: string[]) =>
    `${["POST /v1/rpc HTTP/1.1", `host: ${host}`, "connection: close", ...lines].join("\r\n")}\r\n\r\n`;
  const bearer = `authorization: Bearer ${keys.token.scheme === "bearer" ? keys.token.secret : ""}`;
  const withBody = (kind: string, body: string | Uint8Array, lines: string[] = [bearer]): Spec => {
    const bytes = typeof body === "string" ? encoder.encode(body) : body;
    return {
      kind,
      chunks: [
        head(["content-type: application/json", `content-length: ${bytes.byteLength}`, ...lines]),
        bytes,
      ],
    };
  };
  const signed = async (kind: string, body: string | Uint8Array): Promise<Spec> => {
    const headers = await signHttpRequest({
      method: "POST",
      url,
      headers: { "content-type": "application/json" },
      body,
      key: keys.admin,
    });
    return withBody(
      kind,
      body,
      [...headers].filter(([name]) => name !== "content-type").map(([name, value]) => `${name}: ${value}`),
    );
  };
  const chunked = (kind: string, chunks: string[]): Spec => ({
    kind,
    chunks: [head(["content-type: application/json", "transfer-encoding: chunked", bearer]), ...chunks],
  });
  return [
    () => withBody("nesting: 20,000 deep", call(nested(20_000))),
    () => signed("nesting: 20,000 deep, signed", call(nested(20_000))),
    () => withBody("nesting: unsigned", call(nested(5000)), []),
    () => withBody("nesting: 65 deep objects", call(`${'{"a":'.repeat(65)}1${"}".repeat(65)}`)),
    () => ({
      kind: "size: declares 50 MB",
      chunks: [
        head(["content-type: application/json", "content-length: 52428800", bearer]),
        "{".repeat(1024),
      ],
      abort: "destroy",
    }),
    () =>
      chunked("size: 2 MB chunked", [
        ...Array.from({ length: 32 }, () => `10000\r\n${" ".repeat(0x10000)}\r\n`),
        "0\r\n\r\n",
      ]),
    () => ({ kind: "size: 100 KB header", chunks: [head([`x-pad: ${"a".repeat(100_000)}`, bearer])] }),
    () => withBody("size: empty body", ""),
    () => withBody("encoding: not UTF-8", new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])),
    () =>
      signed("encoding: not UTF-8, signed", new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])),
    () => withBody("encoding: UTF-16", new Uint8Array(Buffer.from(`\ufeff${call("{}")}`, "utf16le"))),
    () => withBody("encoding: gzip garbage", "\x1f\x8b\x08garbage", [bearer, "content-encoding: gzip"]),
    () => withBody("encoding: lone surrogate escape", call('"\\ud800"')),
    () => withBody("json: truncated", call("{}").slice(0, 30)),
    () => withBody("json: wrong types", '{"cluster":5,"agent":[],"action":{}}'),
    () =>
      withBody("json: duplicate keys", '{"cluster":"C1","cluster":"C2","agent":"rpcutil","action":"ping"}'),
    () => chunked("chunking: bad size", ["zz\r\nhello\r\n0\r\n\r\n"]),
    () => chunked("chunking: size overflow", ["ffffffffffffffffff\r\nx\r\n"]),
    () => ({
      kind: "chunking: with content-length",
      chunks: [head(["transfer-encoding: chunked", "content-length: 5", bearer]), "0\r\n\r\n"],
    }),
    () => ({
      kind: "chunking: two content-lengths",
      chunks: [head(["content-length: 5", "content-length: 6", bearer]), "hello!"],
    }),
    () => ({ ...chunked("abort: chunked, no last chunk", ["5\r\nhello\r\n"]), abort: "end" }),
    () => ({
      kind: "abort: mid-body",
      chunks: [head(["content-length: 1000", bearer]), "{".repeat(10)],
      abort: "destroy",
    }),
    () => ({
      kind: "abort: mid-headers",
      chunks: ["POST /v1/rpc HTTP/1.1\r\nhost: x\r\ncontent-"],
      abort: "destroy",
    }),
    () => ({
      kind: "abort: half-closed mid-body",
      chunks: [head(["content-length: 100", bearer]), "{}"],
      abort: "end",
    }),
    () => ({ kind: "request line: garbage", chunks: ["\x16\x03\x01\x00\xa5 hello\r\n\r\n"] }),
    () => ({
      kind: "request line: GET /v1/rpc",
      chunks: [`GET /v1/rpc HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`],
    }),
    (i) =>
      withBody("auth: bad signature", call("{}"), [
        `signature-input: sig1=("@method");created=${i};keyid="admin"`,
        "signature: sig1=:AAAA:",
      ]),
  ];
}

export async function malformedHttp(scope: Scope): Promise<Row> {
  const total = scope.n(10_000, 600);
  const row = emptyRow(`${total} malformed HTTP requests`);
  const [federation, keys] = await Promise.all([startFederation(NODE_COUNT), testKeys()]);
  scope.defer(() => federation.stop());
  const gateway = await spawnGateway(scope, federation, keys);
  const port = Number(new URL(gateway).port);
  const makers = kinds(new URL(gateway).host, keys);
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      // One in 100 is a well-formed request, which the nodes must all answer.
      if (i % 100 === 50) {
        const url = `${gateway}/v1/rpc`;
        const res = await fetch(
          url,
          await signedInit(url, { cluster: CLUSTER, agent: "rpcutil", action: "ping" }, keys.admin),
        );
        const body = (await res.json().catch(() => ({}))) as { summary?: { ok?: number } };
        if (res.status === 200 && body.summary?.ok === NODE_COUNT) row.answered++;
        else {
          row.lost++;
          row.problems.push(`well-formed request ${i}: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
        }
        continue;
      }
      const spec = await makers[i % makers.length]!(i);
      const answer = await rawRequest(port, spec, 10_000);
      const reason = answer.status === null ? answer.why : `http ${answer.status}`;
      row.refused[reason] = (row.refused[reason] ?? 0) + 1;
      if (answer.status !== null) {
        row.answered++;
        if (answer.status < 400 || answer.status >= 500)
          row.problems.push(`${spec.kind}: answered ${answer.status}`);
      } else if (answer.why !== "aborted" && answer.why !== "reset while sending") {
        row.lost++;
        row.problems.push(`${spec.kind}: ${answer.why} without an answer`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  row.sent = total;
  // The books of HTTP: every request the client finished has an answer; the rest the client aborted.
  const unanswered = (row.refused.aborted ?? 0) + (row.refused["reset while sending"] ?? 0);
  row.booksBalanced = row.answered + unanswered + row.lost === total;
  const healthy = await until(
    async () => (await fetch(`${gateway}/healthz`).catch(() => undefined))?.status === 200,
    5000,
  );
  if (!healthy) row.problems.push("the gateway is not healthy after the run");
  // One line per kind that went wrong is enough for the table.
  row.problems = [...new Set(row.problems)].slice(0, 10);
  row.peakRssMiB = scope.peakRssMiB();
  return row;
}

async function spawnGateway(scope: Scope, federation: Federation, keys: TestKeys): Promise<string> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", `${import.meta.dirname}/gateway-process.ts`, federation.federation.url],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_NO_WARNINGS: "1", CHAOS_GATEWAY_KEYS: keys.json },
    },
  );
  scope.watch(child.pid);
  scope.defer(() => child.kill("SIGKILL"));
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  if (
    !(await until(() => output.includes("ready ") || child.exitCode !== null, 30_000)) ||
    child.exitCode !== null
  )
    throw new Error(`gateway did not start: ${output}`);
  return /ready (\S+)/.exec(output)![1]!;
}
