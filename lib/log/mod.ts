// The public surface of lib/log: import from here, not from the files behind it.
export { errorText, jsonLineLogger, type Logger, ThrottledLog } from "./log.ts";
