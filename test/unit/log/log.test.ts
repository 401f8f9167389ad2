import { describe, expect, it } from "vitest";
import { jsonLineLogger, type LogLevel, ThrottledLog } from "../../../lib/log/log.ts";

describe("ThrottledLog", () => {
  function setup(intervalMs = 1000) {
    let now = 0;
    const lines: { level: LogLevel; msg: string; fields: Record<string, unknown> }[] = [];
    const log = new ThrottledLog(
      (level, msg, fields = {}) => lines.push({ level, msg, fields }),
      intervalMs,
      () => now,
    );
    return { log, lines, advance: (ms: number) => (now += ms) };
  }

  it("logs a key once per interval and reports what it left out", () => {
    const { log, lines, advance } = setup();
    for (let i = 0; i < 5; i++) log.note("refused:malformed", "warn", "refused packet", { n: i });
    expect(lines).toEqual([{ level: "warn", msg: "refused packet", fields: { n: 0 } }]);
    advance(999);
    log.note("refused:malformed", "warn", "refused packet", { n: 5 });
    expect(lines).toHaveLength(1);
    advance(1);
    log.note("refused:malformed", "warn", "refused packet", { n: 6 });
    expect(lines[1]).toEqual({ level: "warn", msg: "refused packet", fields: { n: 6, suppressed: 5 } });
  });

  it("throttles each key on its own", () => {
    const { log, lines } = setup();
    log.note("a", "warn", "A");
    log.note("b", "error", "B");
    log.note("a", "warn", "A");
    expect(lines.map((l) => l.msg)).toEqual(["A", "B"]);
  });

  it("flushes suppressed counts once their interval has passed, or when forced", () => {
    const { log, lines, advance } = setup();
    log.note("a", "warn", "A", { last: 1 });
    log.note("a", "warn", "A", { last: 2 });
    log.note("a", "warn", "A", { last: 3 });
    log.flush();
    expect(lines).toHaveLength(1);
    advance(1000);
    log.flush();
    expect(lines[1]).toEqual({ level: "warn", msg: "A", fields: { last: 3, suppressed: 2 } });
    log.flush(true);
    expect(lines).toHaveLength(2);
    log.note("a", "warn", "A");
    log.flush(true);
    expect(lines[2]?.fields).toEqual({ suppressed: 1 });
  });
});

describe("jsonLineLogger", () => {
  it("writes one JSON object per line with time, level, message and fields", () => {
    const out: string[] = [];
    const log = jsonLineLogger(
      (line) => out.push(line),
      { component: "broker" },
      () => new Date(0),
    );
    log("info", "started", { cluster: "C1" });
    expect(out).toEqual([
      '{"time":"1970-01-01T00:00:00.000Z","level":"info","msg":"started","component":"broker","cluster":"C1"}\n',
    ]);
  });
});
