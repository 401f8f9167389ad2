// A local Lambda service for tests: the Invoke API a client calls (buffered `Invoke` and the
// response-streaming `InvokeWithResponseStream`, answered in AWS's event-stream framing) in front of the
// Runtime API that execution environments poll. Each environment is a child process running
// lambda-runtime-shim.mjs under a chosen Node binary, loading a built bundle, as Lambda's Node runtime does;
// with more than one, invocations run concurrently, one per environment.
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { crc32 } from "node:zlib";

export interface LocalLambdaOptions {
  functionName: string;
  /** Folder holding the unpacked bundle (index.mjs). */
  taskRoot: string;
  /** `file.export`, as Lambda's Handler setting. */
  handler: string;
  env: Record<string, string>;
  node?: string;
  environments?: number;
  timeoutMs?: number;
}

export interface LocalLambda {
  /** The endpoint to give the AWS SDK's LambdaClient. */
  endpoint: string;
  /** The User-Agent each environment's runtime sent, which names its Node version. */
  runtimeAgents(): string[];
  /** What the environments wrote to stderr (the gateway's JSON log lines), for a failing test to show. */
  logs(): string;
  stop(): Promise<void>;
}

interface Invocation {
  id: string;
  event: Buffer;
  chunk(bytes: Buffer): void;
  finish(error?: { type: string; body: string }): void;
}

const SHIM = join(import.meta.dirname, "lambda-runtime-shim.mjs");

/** One event-stream message: prelude (lengths and their CRC), string headers, payload, message CRC. */
export function eventStreamMessage(headers: Record<string, string>, payload: Buffer): Buffer {
  const encoded = Object.entries(headers).map(([name, value]) => {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    const head = Buffer.alloc(1 + n.length + 3);
    head.writeUInt8(n.length, 0);
    n.copy(head, 1);
    head.writeUInt8(7, 1 + n.length); // 7: string value
    head.writeUInt16BE(v.length, 2 + n.length);
    return Buffer.concat([head, v]);
  });
  const headerBytes = Buffer.concat(encoded);
  const prelude = Buffer.alloc(12);
  prelude.writeUInt32BE(12 + headerBytes.length + payload.length + 4, 0);
  prelude.writeUInt32BE(headerBytes.length, 4);
  prelude.writeUInt32BE(crc32(prelude.subarray(0, 8)), 8);
  const body = Buffer.concat([prelude, headerBytes, payload]);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(crc32(body), 0);
  return Buffer.concat([body, trailer]);
}

function streamEvent(type: string, contentType: string, payload: Buffer): Buffer {
  return eventStreamMessage(
    { ":event-type": type, ":content-type": contentType, ":message-type": "event" },
    payload,
  );
}

/** The Invoke API's side of one invocation: buffered, or each runtime chunk as a PayloadChunk event. */
function invocation(event: Buffer, res: ServerResponse, streaming: boolean): Invocation {
  const parts: Buffer[] = [];
  return {
    id: randomUUID(),
    event,
    chunk: (bytes) => {
      if (!streaming) return void parts.push(bytes);
      if (!res.headersSent)
        res.writeHead(200, {
          "content-type": "application/vnd.amazon.eventstream",
          "x-amz-executed-version": "$LATEST",
        });
      res.write(streamEvent("PayloadChunk", "application/octet-stream", Buffer.from(bytes)));
    },
    finish: (error) => {
      if (!streaming) {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (error) headers["x-amz-function-error"] = error.type;
        return void res.writeHead(200, headers).end(error ? error.body : Buffer.concat(parts));
      }
      if (!res.headersSent) res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream" });
      const complete = error ? { ErrorCode: error.type, ErrorDetails: error.body } : {};
      res.end(streamEvent("InvokeComplete", "application/json", Buffer.from(JSON.stringify(complete))));
    },
  };
}

/** Invocations waiting for an environment, environments waiting for an invocation, and those running. */
class Invocations {
  readonly waiting: ServerResponse[] = [];
  readonly agents = new Set<string>();
  private readonly queue: Invocation[] = [];
  private readonly running = new Map<string, Invocation>();

  constructor(private readonly options: LocalLambdaOptions) {}

  add(invocation: Invocation): void {
    this.queue.push(invocation);
    this.dispatch();
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.waiting.length > 0) {
      const invocation = this.queue.shift() as Invocation;
      const res = this.waiting.shift() as ServerResponse;
      this.running.set(invocation.id, invocation);
      res.writeHead(200, {
        "content-type": "application/json",
        "lambda-runtime-aws-request-id": invocation.id,
        "lambda-runtime-deadline-ms": String(Date.now() + (this.options.timeoutMs ?? 30_000)),
        "lambda-runtime-invoked-function-arn": `arn:aws:lambda:eu-west-1:123456789012:function:${this.options.functionName}`,
      });
      res.end(invocation.event);
    }
  }

  /** The Runtime API (2018-06-01) an environment polls and answers on. */
  async runtimeApi(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    this.agents.add(req.headers["user-agent"] ?? "");
    if (req.method === "GET" && path === "invocation/next") {
      this.waiting.push(res);
      return this.dispatch();
    }
    const [, id, outcome] = /^invocation\/([^/]+)\/(response|error)$/.exec(path) ?? [];
    const invocation = id === undefined ? undefined : this.running.get(id);
    if (invocation === undefined || req.method !== "POST") {
      if (path === "init/error") process.stderr.write(`lambda init error: ${await buffer(req)}\n`);
      return void res.writeHead(404).end();
    }
    this.running.delete(invocation.id);
    if (outcome === "error") {
      invocation.finish({ type: "Unhandled", body: (await buffer(req)).toString() });
    } else {
      // Forwarded chunk by chunk as the runtime sends them, which is the point of streaming mode.
      for await (const chunk of req) invocation.chunk(chunk as Buffer);
      invocation.finish();
    }
    res.writeHead(202, { "content-type": "application/json" }).end('{"status":"OK"}');
  }
}

function spawnEnvironments(options: LocalLambdaOptions, address: string) {
  let stderr = "";
  const children: ChildProcess[] = [];
  const exited: Promise<unknown>[] = [];
  for (let i = 0; i < (options.environments ?? 1); i++) {
    const child = spawn(options.node ?? process.execPath, [SHIM], {
      env: {
        PATH: process.env.PATH ?? "",
        ...options.env,
        AWS_LAMBDA_RUNTIME_API: address,
        AWS_LAMBDA_FUNCTION_NAME: options.functionName,
        LAMBDA_TASK_ROOT: options.taskRoot,
        _HANDLER: options.handler,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr?.setEncoding("utf8").on("data", (text: string) => {
      stderr = (stderr + text).slice(-65_536);
    });
    children.push(child);
    exited.push(new Promise((resolve) => child.once("exit", resolve)));
  }
  return {
    logs: () => stderr,
    async stop() {
      for (const child of children) child.kill();
      await Promise.all(exited);
    },
  };
}

const INVOKE_PATH =
  /^\/(2015-03-31|2021-11-15)\/functions\/([^/]+)\/(invocations|response-streaming-invocations)$/;

export async function startLocalLambda(options: LocalLambdaOptions): Promise<LocalLambda> {
  const invocations = new Invocations(options);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://local").pathname;
    const runtime = /^\/2018-06-01\/runtime\/(.+)$/.exec(path);
    const call = INVOKE_PATH.exec(path);
    const done = (err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    };
    if (runtime?.[1] !== undefined) return void invocations.runtimeApi(req, res, runtime[1]).catch(done);
    if (call !== null && req.method === "POST" && call[2] === options.functionName) {
      const streaming = call[3] === "response-streaming-invocations";
      return void buffer(req)
        .then((event) => invocations.add(invocation(event, res, streaming)))
        .catch(done);
    }
    res
      .writeHead(404, { "content-type": "application/json", "x-amzn-errortype": "ResourceNotFoundException" })
      .end(JSON.stringify({ Type: "User", Message: `Function not found: ${call?.[2] ?? path}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const environments = spawnEnvironments(options, address);
  return {
    endpoint: `http://${address}`,
    runtimeAgents: () => [...invocations.agents].filter(Boolean),
    logs: environments.logs,
    async stop() {
      await environments.stop();
      for (const res of invocations.waiting) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
