import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { errorText } from "../../log/mod.ts";
import type { CallbackMessage, CallbackOutcome } from "./callbacks.ts";
import type { CallbackTarget } from "./model.ts";

export interface LambdaSenderOptions {
  /** Region for functions that name none; otherwise the SDK's chain (AWS_REGION, profile, ...). */
  region?: string;
  /** Lambda API endpoint override, for tests and private endpoints. */
  endpoint?: string;
}

/**
 * Invokes a Lambda function asynchronously (InvocationType `Event`) with the callback message as its event.
 * Credentials come from the SDK's standard chain; the SDK's own retries run inside each attempt.
 * Lambda accepting the event (202) is a delivery: what the function then does is its own affair.
 */
export function lambdaCallbackSender(options: LambdaSenderOptions = {}) {
  const clients = new Map<string, LambdaClient>();
  const clientFor = (region: string | undefined) => {
    const chosen = region ?? options.region;
    let client = clients.get(chosen ?? "");
    if (client === undefined) {
      client = new LambdaClient({
        ...(chosen === undefined ? {} : { region: chosen }),
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      });
      clients.set(chosen ?? "", client);
    }
    return client;
  };
  const encoder = new TextEncoder();
  return {
    async send(
      target: Extract<CallbackTarget, { kind: "lambda" }>,
      message: CallbackMessage,
    ): Promise<CallbackOutcome> {
      try {
        const output = await clientFor(target.region).send(
          new InvokeCommand({
            FunctionName: target.function_name,
            ...(target.qualifier === undefined ? {} : { Qualifier: target.qualifier }),
            InvocationType: "Event",
            Payload: encoder.encode(message.body),
          }),
        );
        const status = output.StatusCode;
        if (status === 202) return { ok: true, outcome: "delivered", status };
        return {
          ok: false,
          outcome: "lambda_error",
          ...(status === undefined ? {} : { status }),
          detail: `Invoke answered ${status}`,
        };
      } catch (err) {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        const name = err instanceof Error ? err.name : "Error";
        // An answer from the Lambda API (its status known) is its refusal; otherwise it was not reached.
        return {
          ok: false,
          outcome:
            status !== undefined ? "lambda_error" : name === "TimeoutError" ? "timeout" : "connection_failed",
          ...(status === undefined ? {} : { status }),
          detail: `${name}: ${errorText(err)}`,
        };
      }
    },
    close() {
      for (const client of clients.values()) client.destroy();
      clients.clear();
    },
  };
}
