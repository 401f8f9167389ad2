// Where the gateway's audit lines go (`--audit`): apart from the logs (always stderr), so that a
// collector can ship them to their own store. stdout stays the default, as before this option.
import { closeSync, fchmodSync, openSync, writeSync } from "node:fs";
import { type AuditEvent, auditLine } from "../lib/security/http/mod.ts";

export type AuditTarget = "stdout" | "stderr" | "off" | { file: string };

export interface AuditSink {
  write: (event: AuditEvent) => void;
  close(): void;
}

/** `stdout`, `stderr`, `off` or `file:<path>`; an error message for anything else. */
export function parseAuditTarget(text: string): AuditTarget | { error: string } {
  if (text === "stdout" || text === "stderr" || text === "off") return text;
  if (text.startsWith("file:") && text.length > "file:".length) return { file: text.slice("file:".length) };
  return { error: `--audit: stdout, stderr, file:<path> or off, not ${text}` };
}

export function auditSink(target: AuditTarget): AuditSink {
  if (target === "off") return { write: () => {}, close: () => {} };
  if (typeof target === "string") {
    const stream = target === "stdout" ? process.stdout : process.stderr;
    return { write: (event) => stream.write(`${auditLine(event)}\n`), close: () => {} };
  }
  // Appended with O_APPEND so several processes may share the file; readable by its owner only, since
  // the lines name callers and keys. A file made earlier with a wider mode is narrowed too.
  const fd = openSync(target.file, "a", 0o600);
  fchmodSync(fd, 0o600);
  let open = true;
  return {
    // Synchronous: an audit line is written before the answer it records leaves, and none is lost at exit.
    write: (event) => {
      if (open) writeSync(fd, `${auditLine(event)}\n`);
    },
    close: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}
