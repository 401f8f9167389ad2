// Lambda events as AWS delivers them for an HTTP request: API Gateway HTTP API (payload format 2.0) and
// Lambda Function URLs (the same format with `$default` route, a lambda-url domain, and a base64 body
// whenever AWS does not treat the content as text). Field names and shapes follow AWS's documented events.

export interface HttpCall {
  method: string;
  /** Full URL as the caller signed it: the scheme, host and path end up in the event. */
  url: string;
  headers: Record<string, string>;
  body: string;
}

const ACCOUNT = "123456789012";

function common(call: HttpCall, base64: boolean) {
  const url = new URL(call.url);
  const headers = Object.fromEntries(Object.entries(call.headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    url,
    headers: {
      ...headers,
      host: url.host,
      "content-length": String(new TextEncoder().encode(call.body).byteLength),
      "x-amzn-trace-id": "Root=1-67890abc-0123456789abcdef01234567",
      "x-forwarded-for": "203.0.113.9",
      "x-forwarded-port": "443",
      "x-forwarded-proto": "https",
    },
    body: base64 ? Buffer.from(call.body, "utf8").toString("base64") : call.body,
    http: {
      method: call.method,
      path: url.pathname,
      protocol: "HTTP/1.1",
      sourceIp: "203.0.113.9",
      userAgent: headers["user-agent"] ?? "choria-edge-test",
    },
    timeEpoch: Date.now(),
  };
}

/** An API Gateway HTTP API event, payload format 2.0, for a `POST /v1/rpc`-style route. */
export function apiGatewayV2Event(call: HttpCall) {
  const c = common(call, false);
  const apiId = c.url.hostname.split(".")[0]!;
  const routeKey = `${call.method} ${c.url.pathname}`;
  return {
    version: "2.0",
    routeKey,
    rawPath: c.url.pathname,
    rawQueryString: c.url.search.slice(1),
    headers: c.headers,
    requestContext: {
      accountId: ACCOUNT,
      apiId,
      domainName: c.url.hostname,
      domainPrefix: apiId,
      http: c.http,
      requestId: "JKJaXmPLvHcESHA=",
      routeKey,
      stage: "$default",
      time: new Date(c.timeEpoch).toUTCString(),
      timeEpoch: c.timeEpoch,
    },
    body: c.body,
    isBase64Encoded: false,
  };
}

/** A Lambda Function URL event; `base64` as AWS sends bodies it does not treat as text. */
export function functionUrlEvent(call: HttpCall, base64 = true) {
  const c = common(call, base64);
  const urlId = c.url.hostname.split(".")[0]!;
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: c.url.pathname,
    rawQueryString: c.url.search.slice(1),
    headers: c.headers,
    requestContext: {
      accountId: "anonymous",
      apiId: urlId,
      domainName: c.url.hostname,
      domainPrefix: urlId,
      http: c.http,
      requestId: "c4f1b7e2-0d6a-4b59-9f3e-5c2a1d8e7b60",
      routeKey: "$default",
      stage: "$default",
      time: new Date(c.timeEpoch).toUTCString(),
      timeEpoch: c.timeEpoch,
    },
    body: c.body,
    isBase64Encoded: base64,
  };
}

/** The context object Lambda passes beside the event; the handler only reads what hono/aws-lambda needs. */
export function lambdaContext() {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: "choria-edge-gateway",
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:choria-edge-gateway`,
    memoryLimitInMB: "512",
    awsRequestId: crypto.randomUUID(),
    logGroupName: "/aws/lambda/choria-edge-gateway",
    logStreamName: "2026/11/25/[$LATEST]0123456789abcdef",
    getRemainingTimeInMillis: () => 30_000,
  };
}
