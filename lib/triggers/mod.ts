// The public surface of lib/triggers: webhook triggers from a trigger file, evaluated per delivery. The
// YAML parser is in node.ts; this surface parses JSON only.
export type { Delivery } from "./conditions.ts";
export { describeCondition, firstFailingCondition } from "./conditions.ts";
export {
  parseTriggerJson,
  type Trigger,
  type TriggerConfigError,
  type TriggerFileResult,
  type TriggerParser,
  type TriggerSet,
  triggerSecrets,
} from "./config.ts";
export { applyJobEffects, jobDataActions } from "./effects.ts";
export {
  evaluateTrigger,
  type TriggerOutcome,
} from "./evaluate.ts";
export { parsePayload } from "./payload.ts";
export { isShellSafe } from "./shellsafe.ts";
