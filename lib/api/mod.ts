// The public surface of lib/api: import from here, not from the files behind it.
export { commonRpcBody, type RpcRequestBody, rpcRequestBodySchema } from "./rpc-body.ts";
