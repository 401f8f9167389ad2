// The public surface of lib/results/jobs: import from here, not from the files behind it. What only the
// collector process needs on Node (its options, HTTP and Lambda callbacks) is in ./node.ts.
export { callbackSender } from "./callbacks.ts";
export { JobRecorder } from "./job-recorder.ts";
export { DEFAULT_BUCKET, idempotencyKey } from "./keys.ts";
export { endJob } from "./lifecycle.ts";
export {
  CALLBACK_OUTCOMES,
  type CallbackTarget,
  callbackTargetSchema,
  JOB_STATES,
  type JobDataAction,
  type JobEffects,
  type JobRecord,
  type JobState,
  type JobView,
  jobView,
  MAX_CONFLICTING_LISTED,
  type NewJob,
  RESULT_FILTERS,
  type ResultFilter,
} from "./model.ts";
export { jobAsRpcResult } from "./rpc-result.ts";
export { importSealKey, newSealKey, sealSecret } from "./sealed-secret.ts";
export {
  type CreateOptions,
  type CreateOutcome,
  type JobEvent,
  type JobList,
  type JobListQuery,
  JobStore,
} from "./store.ts";
export { COLLECTOR_QUEUE, isJobId, JOB_REPLY_WILDCARD, jobReplySubject, REPLY_STREAM } from "./subjects.ts";
