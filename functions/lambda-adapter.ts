// The one module that names hono's Lambda adapter. hono marks `hono/aws-lambda` deprecated in favour of the
// separate `@hono/aws-lambda` package; when that ships, the import below is the whole change.
import type { Env, Hono } from "hono";
import { handle, type LambdaContext, type LambdaEvent, streamHandle } from "hono/aws-lambda";

export type { LambdaContext, LambdaEvent };

/** Answers with the whole body at once: API Gateway, ALB, and Function URLs in BUFFERED mode. */
export type BufferedHandler = ReturnType<typeof handle>;

/** Lambda's response stream: a Node writable that the runtime forwards as the invocation's response. */
export interface ResponseStream extends NodeJS.WritableStream {
  setContentType(type: string): void;
}

export type StreamingHandler = (
  event: LambdaEvent,
  stream: ResponseStream,
  context: LambdaContext,
) => Promise<void>;

interface LambdaGlobals {
  streamifyResponse(handler: StreamingHandler): StreamingHandler;
}

export function bufferedHandler<E extends Env>(app: Hono<E>): BufferedHandler {
  return handle(app);
}

/**
 * A Function URL handler in RESPONSE_STREAM mode, so NDJSON and SSE answers reach the caller as they are
 * written. Lambda's Node runtime decides at load time whether an export streams (streamifyResponse marks
 * it), so this is made at module scope while the app itself is built on the first invocation. Outside that
 * runtime there is no `awslambda.streamifyResponse`, and the export says so when called instead of failing
 * the load.
 */
export function streamingHandler<E extends Env>(app: () => Promise<Hono<E>>): StreamingHandler {
  // Checked by its function, not the object: the AWS SDK's invoke store creates an empty `awslambda` anywhere.
  const runtime = (globalThis as { awslambda?: Partial<LambdaGlobals> }).awslambda;
  if (typeof runtime?.streamifyResponse !== "function")
    return () => Promise.reject(new Error("response streaming needs Lambda's Node.js runtime (awslambda)"));
  let streaming: { app: Hono<E>; handler: StreamingHandler } | undefined;
  return runtime.streamifyResponse(async (event, stream, context) => {
    const current = await app();
    if (streaming?.app !== current)
      streaming = { app: current, handler: streamHandle(current) as unknown as StreamingHandler };
    await streaming.handler(event, stream, context);
  });
}
