// The public surface of the Choria protocol library: import from here, not from the files behind it.
export * from "./base64.ts";
export * from "./errors.ts";
export * from "./filter.ts";
export * from "./ids.ts";
export * from "./json.ts";
export * from "./message.ts";
export * from "./rpc.ts";
export * from "./secure.ts";
export * from "./subjects.ts";
export * from "./transport.ts";
