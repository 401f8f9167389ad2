// A local stand-in for the AWS Lambda Invoke API (POST /2015-03-31/functions/<name>/invocations), so that
// tests drive the real @aws-sdk/client-lambda (request signing, error parsing, retries) against handlers
// running in the test process. Event invocations answer 202 at once and run the handler afterwards, as
// Lambda does; RequestResponse runs it first and returns its result.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { text } from "node:stream/consumers";

export type LambdaHandler = (event: unknown) => unknown;

export interface LambdaInvocation {
  functionName: string;
  qualifier: string | undefined;
  invocationType: string;
  payload: string;
  /** Whether the request carried a SigV4 Authorization header. */
  signed: boolean;
}

export interface LambdaApi {
  /** Endpoint to give the SDK client. */
  readonly url: string;
  /** Every invocation accepted, in order. */
  readonly invocations: LambdaInvocation[];
  setHandler(name: string, handler: LambdaHandler): void;
  /** The next `count` requests get a 500 ServiceException (the SDK retries those). */
  failNext(count: number): void;
  close(): Promise<void>;
}

const PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

export async function startLambdaApi(handlers: Record<string, LambdaHandler> = {}): Promise<LambdaApi> {
  const functions = new Map(Object.entries(handlers));
  const invocations: LambdaInvocation[] = [];
  let failures = 0;

  const server = createServer((req, res) => {
    void serve(req, res).catch((err: unknown) => error(res, 500, "ServiceException", String(err)));
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://lambda.local");
    const match = PATH.exec(url.pathname);
    const payload = await text(req);
    if (req.method !== "POST" || match === null)
      return error(res, 404, "UnknownOperationException", url.pathname);
    if (failures > 0) {
      failures--;
      return error(res, 500, "ServiceException", "injected failure");
    }
    const functionName = decodeURIComponent(match[1]!);
    const handler = functions.get(functionName);
    if (handler === undefined)
      return error(res, 404, "ResourceNotFoundException", `Function not found: ${functionName}`);
    const invocationType = String(req.headers["x-amz-invocation-type"] ?? "RequestResponse");
    invocations.push({
      functionName,
      qualifier: url.searchParams.get("Qualifier") ?? undefined,
      invocationType,
      payload,
      signed: String(req.headers.authorization ?? "").startsWith("AWS4-HMAC-SHA256 "),
    });
    const event = payload === "" ? {} : JSON.parse(payload);
    if (invocationType === "Event") {
      res.writeHead(202).end();
      setImmediate(
        () =>
          void Promise.resolve()
            .then(() => handler(event))
            .catch(() => {}),
      );
      return;
    }
    const result = await handler(event);
    res.writeHead(200, { "content-type": "application/json", "x-amz-executed-version": "$LATEST" });
    res.end(JSON.stringify(result ?? null));
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    invocations,
    setHandler: (name, handler) => functions.set(name, handler),
    failNext: (count) => {
      failures = count;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function error(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { "content-type": "application/json", "x-amzn-errortype": type });
  res.end(JSON.stringify({ Type: status >= 500 ? "Service" : "User", message }));
}
