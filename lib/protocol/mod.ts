// The public surface of the Choria protocol library: import from here, not from the files behind it.
export * from "./base64.ts";
export * from "./errors.ts";
export * from "./filter.ts";
export * from "./ids.ts";
export * from "./json.ts";
export { depthDetail, jsonDepthExceeds, MAX_JSON_DEPTH } from "./json-depth.ts";
export * from "./message.ts";
export { compileRe2, MAX_REGEX_LENGTH, type Re2Regex, regexLiteral } from "./re2.ts";
export * from "./rpc.ts";
export * from "./secure.ts";
export * from "./subjects.ts";
export * from "./transport.ts";
export { checkTransport, checkTransportHeaders } from "./transport-check.ts";
