// A local Lambda control plane for the deploy command's tests: the few REST calls the AWS SDK makes to
// create or update a function and its Function URL, with Lambda's rules that matter here: a write leaves the
// function Pending / InProgress for a while, another write meanwhile is a ResourceConflictException, and
// a policy statement id can be added once. Every request is recorded, bodies parsed, for the test to check.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { text } from "node:stream/consumers";

export interface RecordedCall {
  operation: string;
  body: Record<string, unknown>;
}

interface FunctionState {
  config: Record<string, unknown>;
  zip: Buffer;
  busyUntil: number;
  url?: Record<string, unknown>;
  statements: Set<string>;
}

export interface ControlPlane {
  endpoint: string;
  calls: RecordedCall[];
  functions: Map<string, FunctionState>;
  /** Operations answered 403 AccessDeniedException; or every write refused as busy. */
  refuse: { denied: Set<string>; busy: boolean };
  stop(): Promise<void>;
}

const ACCOUNT = "123456789012";
const SETTLE_MS = 300;

type Route = { operation: string; method: string; pattern: RegExp };
const ROUTES: Route[] = [
  { operation: "CreateFunction", method: "POST", pattern: /^\/2015-03-31\/functions\/?$/ },
  { operation: "GetFunction", method: "GET", pattern: /^\/2015-03-31\/functions\/([^/]+)$/ },
  { operation: "UpdateFunctionCode", method: "PUT", pattern: /^\/2015-03-31\/functions\/([^/]+)\/code$/ },
  {
    operation: "UpdateFunctionConfiguration",
    method: "PUT",
    pattern: /^\/2015-03-31\/functions\/([^/]+)\/configuration$/,
  },
  { operation: "AddPermission", method: "POST", pattern: /^\/2015-03-31\/functions\/([^/]+)\/policy$/ },
  { operation: "GetFunctionUrlConfig", method: "GET", pattern: /^\/2021-10-31\/functions\/([^/]+)\/url$/ },
  {
    operation: "CreateFunctionUrlConfig",
    method: "POST",
    pattern: /^\/2021-10-31\/functions\/([^/]+)\/url$/,
  },
  { operation: "UpdateFunctionUrlConfig", method: "PUT", pattern: /^\/2021-10-31\/functions\/([^/]+)\/url$/ },
];

function send(res: ServerResponse, status: number, body: unknown, error?: string): void {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (error) headers["x-amzn-errortype"] = error;
  res.writeHead(status, headers).end(JSON.stringify(body));
}

const fail = (res: ServerResponse, status: number, error: string, message: string) =>
  send(res, status, { Type: "User", Message: message }, error);

/** What GetFunction and the writes answer: Pending / InProgress until the last write has settled. */
function view(fn: FunctionState): Record<string, unknown> {
  const settled = Date.now() >= fn.busyUntil;
  return {
    ...fn.config,
    State: settled ? "Active" : "Pending",
    LastUpdateStatus: settled ? "Successful" : "InProgress",
  };
}

/** One call on the functions as Lambda keeps them: a write while the last one settles is a conflict. */
function answer(
  functions: Map<string, FunctionState>,
  refuse: ControlPlane["refuse"],
  res: ServerResponse,
  route: Route,
  name: string,
  body: Record<string, unknown>,
) {
  const fn = functions.get(name);
  const write = route.method !== "GET";
  if (route.operation === "CreateFunction") {
    const functionName = String(body.FunctionName);
    if (functions.has(functionName))
      return fail(res, 409, "ResourceConflictException", `Function already exist: ${functionName}`);
    const { Code, ...config } = body;
    const created: FunctionState = {
      config: { ...config, FunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${functionName}` },
      zip: Buffer.from(String((Code as { ZipFile?: string }).ZipFile ?? ""), "base64"),
      busyUntil: Date.now() + SETTLE_MS,
      statements: new Set(),
    };
    functions.set(functionName, created);
    return send(res, 201, view(created));
  }
  if (fn === undefined) return fail(res, 404, "ResourceNotFoundException", `Function not found: ${name}`);
  if (write && (refuse.busy || Date.now() < fn.busyUntil))
    return fail(res, 409, "ResourceConflictException", `An update is in progress for resource: ${name}`);
  switch (route.operation) {
    case "GetFunction":
      return send(res, 200, { Configuration: view(fn), Code: { RepositoryType: "S3" } });
    case "UpdateFunctionCode":
      fn.zip = Buffer.from(String(body.ZipFile ?? ""), "base64");
      fn.busyUntil = Date.now() + SETTLE_MS;
      return send(res, 200, view(fn));
    case "UpdateFunctionConfiguration":
      Object.assign(fn.config, body);
      fn.busyUntil = Date.now() + SETTLE_MS;
      return send(res, 200, view(fn));
    case "AddPermission": {
      const id = String(body.StatementId);
      if (fn.statements.has(id))
        return fail(
          res,
          409,
          "ResourceConflictException",
          `The statement id (${id}) provided already exists.`,
        );
      fn.statements.add(id);
      return send(res, 201, { Statement: JSON.stringify({ Sid: id }) });
    }
    case "GetFunctionUrlConfig":
      return fn.url
        ? send(res, 200, fn.url)
        : fail(res, 404, "ResourceNotFoundException", "The resource you requested does not exist.");
    case "CreateFunctionUrlConfig":
      if (fn.url)
        return fail(res, 409, "ResourceConflictException", "FunctionUrlConfig exists for this function");
      fn.url = {
        ...body,
        FunctionUrl: "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/",
        FunctionArn: fn.config.FunctionArn,
      };
      return send(res, 201, fn.url);
    default:
      if (!fn.url)
        return fail(res, 404, "ResourceNotFoundException", "The resource you requested does not exist.");
      Object.assign(fn.url, body);
      return send(res, 200, fn.url);
  }
}

export async function startControlPlane(): Promise<ControlPlane> {
  const calls: RecordedCall[] = [];
  const functions = new Map<string, FunctionState>();
  const refuse = { denied: new Set<string>(), busy: false };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://local").pathname;
    void text(req).then((raw) => {
      for (const route of ROUTES) {
        const match = route.method === req.method ? route.pattern.exec(path) : null;
        if (match === null) continue;
        const body = raw === "" ? {} : (JSON.parse(raw) as Record<string, unknown>);
        calls.push({ operation: route.operation, body });
        if (refuse.denied.has(route.operation))
          return fail(
            res,
            403,
            "AccessDeniedException",
            `User is not authorized to perform: lambda:${route.operation}`,
          );
        return answer(functions, refuse, res, route, decodeURIComponent(match[1] ?? ""), body);
      }
      fail(res, 404, "UnknownOperationException", `${req.method} ${path}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    functions,
    refuse,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
