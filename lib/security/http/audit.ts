// One JSON line per gateway decision. Built from an allow-list of fields, so a secret, a signature or a
// body can only reach the log by being put into a field whose name says it is none of those.

/** A decision: accepted (the request went out) or refused, and why. Field names match the gateway's. */
export interface AuditEvent {
  /**
   * `skipped`: a webhook whose trigger conditions did not hold; nothing ran. `aborted`: the caller hung up
   * before its request was complete (reason `client-aborted`); nothing ran.
   */
  decision: "accepted" | "refused" | "skipped" | "aborted";
  /** The refusal's problem code, e.g. "replay" or "forbidden". */
  reason?: string;
  detail?: string;
  status: number;
  key?: string;
  caller?: string;
  scheme?: string;
  callerid?: string;
  method?: string;
  /** The URL's path; a query string could carry anything, so it is never logged. */
  path?: string;
  cluster?: string;
  collective?: string;
  agent?: string;
  action?: string;
  request_id?: string;
  /** The async job the request became. */
  job_id?: string;
  /** For webhooks: the trigger, the sender's delivery id and event type. */
  trigger?: string;
  delivery_id?: string;
  event?: string;
  targets?: number | null;
  nonce?: string;
  /** Default: now. */
  at?: Date;
}

const TEXT_FIELDS = [
  "reason",
  "detail",
  "key",
  "caller",
  "scheme",
  "callerid",
  "method",
  "path",
  "cluster",
  "collective",
  "agent",
  "action",
  "request_id",
  "job_id",
  "trigger",
  "delivery_id",
  "event",
  "nonce",
] as const;

const MAX_TEXT = 512;

/** The event as one line of JSON (no trailing newline); unknown fields of `event` are dropped. */
export function auditLine(event: AuditEvent): string {
  const line: Record<string, unknown> = {
    // The same field as the JSON logs (lib/log/log.ts), so one query orders both.
    time: (event.at ?? new Date()).toISOString(),
    audit: "choria-edge.gateway",
    decision: event.decision,
    status: event.status,
  };
  for (const field of TEXT_FIELDS) {
    const value = event[field];
    if (typeof value === "string") line[field] = clip(field === "path" ? value.split("?")[0]! : value);
  }
  if (typeof event.targets === "number" || event.targets === null) line.targets = event.targets;
  return JSON.stringify(line);
}

function clip(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}
