// The public surface of lib/api: import from here, not from the files behind it.
export { type RpcRequestBody, rpcRequestBodySchema } from "./rpc-body.ts";
