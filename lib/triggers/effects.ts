// A trigger run's end in the data store: its locks released and its `on_complete` writes made, once the
// job has settled. Run by the result collectors (the gateway is long gone by then); every step is safe to
// repeat, since two collectors may both get to the same job.
import { type DataStore, releaseLock } from "../data/mod.ts";
import type { JobDataAction, JobEffects, JobState } from "../results/jobs/mod.ts";

export async function applyJobEffects(
  data: DataStore,
  effects: Omit<JobEffects, "done">,
  state: JobState,
): Promise<void> {
  // Writes first: a run that waits for the lock must see what the run before it wrote.
  for (const action of effects.data) {
    if (action.when_state !== undefined && !action.when_state.includes(state)) continue;
    if (action.op === "put") await data.put(action.key, action.value);
    else await data.delete(action.key);
  }
  // A lock someone else holds now (ours ran out) is left alone: releaseLock checks the token.
  for (const lock of effects.locks) await releaseLock(data, lock.name, lock.token);
}

/** A trigger's `on_complete` entries as the job record stores them. */
export function jobDataActions(
  actions: readonly { op: "put" | "delete"; key: string; value?: string; whenState?: string[] }[],
): JobDataAction[] {
  return actions.map((action) => {
    const when = action.whenState === undefined ? {} : { when_state: action.whenState as JobState[] };
    return action.op === "put"
      ? { op: "put", key: action.key, value: action.value ?? "", ...when }
      : { op: "delete", key: action.key, ...when };
  });
}
