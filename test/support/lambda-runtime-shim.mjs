// A minimal Lambda Node.js runtime for tests, plain JavaScript so that any Node binary runs it as it is.
// Like the real runtime (aws-lambda-nodejs-runtime-interface-client) it defines the `awslambda` global
// before loading the handler's module, then loops over the Runtime API at AWS_LAMBDA_RUNTIME_API: it takes
// the next event, calls the handler named by _HANDLER ("index.stream" = export `stream` of index.mjs in
// LAMBDA_TASK_ROOT), and posts the result, or for a handler streamifyResponse marked, streams the response
// as a chunked POST in "streaming" response mode, written as the handler writes it.
import { request } from "node:http";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";

// The real runtime's marker, read when the handler is loaded, that switches the invocation to streaming.
const STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");
const PRELUDE_TYPE = "application/vnd.awslambda.http-integration-response";

globalThis.awslambda = {
  streamifyResponse(handler) {
    handler[STREAMING] = "response";
    return handler;
  },
  HttpResponseStream: {
    // The status and headers go first, as JSON, then eight zero bytes, then the body.
    from(stream, prelude) {
      stream.setContentType(PRELUDE_TYPE);
      const metadata = JSON.stringify(prelude);
      stream._onBeforeFirstWrite = (write) => {
        write(metadata);
        write(new Uint8Array(8));
      };
      return stream;
    },
  },
};

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
const userAgent = `aws-lambda-nodejs/${process.version}-choria-edge-test-shim`;

function post(path, body, headers = {}) {
  return fetch(`${api}${path}`, {
    method: "POST",
    body,
    headers: { "user-agent": userAgent, "content-type": "application/json", ...headers },
  }).then((r) => r.arrayBuffer());
}

function responseStream(id) {
  const req = request(`${api}/invocation/${id}/response`, {
    method: "POST",
    headers: {
      "user-agent": userAgent,
      "lambda-runtime-function-response-mode": "streaming",
      "transfer-encoding": "chunked",
      "content-type": "application/octet-stream",
    },
  });
  const answered = new Promise((resolve, reject) => {
    req.on("response", (res) => res.resume().on("end", resolve));
    req.on("error", reject);
  });
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    stream._onBeforeFirstWrite?.((chunk) => req.write(chunk));
  };
  const stream = new Writable({
    write(chunk, _encoding, done) {
      start();
      // Each chunk goes out at once: the chunked request body is what makes the response a stream.
      req.write(chunk, done);
    },
    final(done) {
      start();
      req.end(done);
    },
  });
  stream.setContentType = (type) => req.setHeader("content-type", type);
  // A handler that failed before writing anything reports an error instead; its response never starts.
  const abandon = () => {
    if (started) return;
    answered.catch(() => {});
    req.destroy();
  };
  return { stream, answered, abandon };
}

async function invoke(handler, id, event, context) {
  if (handler[STREAMING] !== "response") {
    const result = await handler(event, context);
    await post(`/invocation/${id}/response`, JSON.stringify(result ?? null));
    return;
  }
  const { stream, answered, abandon } = responseStream(id);
  try {
    await handler(event, stream, context);
  } catch (err) {
    abandon();
    throw err;
  }
  if (!stream.writableFinished) stream.end();
  await answered;
}

const [file, name] = (process.env._HANDLER ?? "index.handler").split(".");
const loaded = await import(pathToFileURL(join(process.env.LAMBDA_TASK_ROOT ?? ".", `${file}.mjs`)).href);
const handler = loaded[name];
if (typeof handler !== "function") {
  await post(
    "/init/error",
    JSON.stringify({ errorType: "Runtime.HandlerNotFound", errorMessage: `${file}.${name}` }),
  );
  process.exit(1);
}

for (;;) {
  const next = await fetch(`${api}/invocation/next`, { headers: { "user-agent": userAgent } });
  const id = next.headers.get("lambda-runtime-aws-request-id");
  const deadline = Number(next.headers.get("lambda-runtime-deadline-ms"));
  const event = await next.json();
  const context = {
    awsRequestId: id,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    invokedFunctionArn: next.headers.get("lambda-runtime-invoked-function-arn"),
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
  try {
    await invoke(handler, id, event, context);
  } catch (err) {
    const error = { errorType: err?.name ?? "Error", errorMessage: String(err?.message ?? err) };
    await post(`/invocation/${id}/error`, JSON.stringify(error), {
      "lambda-runtime-function-error-type": error.errorType,
    });
  }
}
