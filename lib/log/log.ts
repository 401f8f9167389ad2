export type LogLevel = "debug" | "info" | "warn" | "error";

/** Structured logging: one event, a fixed message and machine-readable fields. */
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/**
 * An error as one line of text for a log field or a problem's detail: its message, and its cause's when it
 * has one (fetch's "fetch failed" says nothing without the cause), never a stack.
 */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
}

/** A logger writing one JSON object per line, e.g. to stderr. */
export function jsonLineLogger(
  write: (line: string) => void,
  base: Record<string, unknown> = {},
  now: () => Date = () => new Date(),
): Logger {
  return (level, msg, fields) => {
    write(`${JSON.stringify({ time: now().toISOString(), level, msg, ...base, ...fields })}\n`);
  };
}

interface ThrottleState {
  lastLoggedAt: number;
  suppressed: number;
  lastFields: Record<string, unknown>;
  level: LogLevel;
  msg: string;
}

/**
 * Logs each key (a refusal reason, a drop reason) at most once per interval, so a flood of bad packets
 * cannot flood the logs; the next line for a key says how many were left out in between.
 */
export class ThrottledLog {
  private readonly states = new Map<string, ThrottleState>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  note(key: string, level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    const t = this.now();
    const state = this.states.get(key);
    if (state !== undefined && t - state.lastLoggedAt < this.intervalMs) {
      state.suppressed++;
      state.lastFields = fields;
      return;
    }
    const suppressed = state?.suppressed ?? 0;
    this.log(level, msg, suppressed > 0 ? { ...fields, suppressed } : fields);
    this.states.set(key, { lastLoggedAt: t, suppressed: 0, lastFields: fields, level, msg });
  }

  /** Reports keys whose interval has passed with suppressed events still untold (call periodically). */
  flush(force = false): void {
    const t = this.now();
    for (const state of this.states.values()) {
      if (state.suppressed === 0 || (!force && t - state.lastLoggedAt < this.intervalMs)) continue;
      this.log(state.level, state.msg, { ...state.lastFields, suppressed: state.suppressed });
      state.suppressed = 0;
      state.lastLoggedAt = t;
    }
  }
}
