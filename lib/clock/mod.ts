// The public surface of lib/clock: import from here, not from the files behind it.
export { type Clock, realClock, sleep } from "./clock.ts";
export { parseDuration } from "./duration.ts";
export { ManualClock } from "./manual.ts";
