// The public surface of lib/triggers: webhook triggers from a YAML or JSON file, evaluated per delivery.
export type { Delivery } from "./conditions.ts";
export { describeCondition, firstFailingCondition } from "./conditions.ts";
export {
  parseTriggerFile,
  type Trigger,
  type TriggerConfigError,
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
