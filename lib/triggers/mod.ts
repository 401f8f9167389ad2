// The public surface of lib/triggers: webhook triggers from a YAML or JSON file, evaluated per delivery.
export type { Condition, ConditionScalar, ConditionSubject, ConditionTest, Delivery } from "./conditions.ts";
export { describeCondition, firstFailingCondition } from "./conditions.ts";
export {
  type DataAction,
  FINAL_JOB_STATES,
  parseTriggerFile,
  type Trigger,
  type TriggerConfigError,
  type TriggerFileResult,
  type TriggerSet,
  triggerFileSchema,
  triggerSecrets,
  VERIFY_SCHEMES,
  type VerifyScheme,
} from "./config.ts";
export { applyJobEffects, jobDataActions } from "./effects.ts";
export {
  evaluateTrigger,
  type InputError,
  type ReadData,
  type TriggerOutcome,
} from "./evaluate.ts";
export type { InputSource, InputSpec, InputType, InputValue } from "./inputs.ts";
export { type ParsedPayload, parsePayload } from "./payload.ts";
export { isShellSafe } from "./shellsafe.ts";
