import { describe, expect, it } from "vitest";
import {
  chooseFormat,
  ndjsonLine,
  type StreamEvent,
  sseFrame,
  summaryEvent,
} from "../../../lib/results/stream.ts";
import { summarise } from "../../../lib/results/summary.ts";

const reply: StreamEvent = {
  type: "reply",
  identity: "node1",
  statuscode: 0,
  statusmsg: "line one\nline two\r\n",
  data: { text: "a\u2028b" },
  ms: 3,
};

describe("chooseFormat", () => {
  it("defaults to JSON", () => {
    for (const accept of [undefined, null, "", "*/*", "text/html", "application/json"])
      expect(chooseFormat(accept)).toBe("json");
  });

  it("picks the streaming formats, case-insensitively and with parameters", () => {
    expect(chooseFormat("application/x-ndjson")).toBe("ndjson");
    expect(chooseFormat("Text/Event-Stream; charset=utf-8")).toBe("sse");
    expect(chooseFormat("text/html, application/x-ndjson;q=0.5")).toBe("ndjson");
  });

  it("honours quality values, the first listed winning a tie, and q=0 meaning never", () => {
    expect(chooseFormat("application/json;q=0.4, text/event-stream;q=0.9")).toBe("sse");
    expect(chooseFormat("text/event-stream, application/x-ndjson")).toBe("sse");
    expect(chooseFormat("text/event-stream;q=0, application/json")).toBe("json");
  });
});

describe("encoders", () => {
  it("ndjson: one line per event that parses back to the event", () => {
    const line = ndjsonLine(reply);
    expect(line.endsWith("\n")).toBe(true);
    expect(line.slice(0, -1)).not.toContain("\n");
    expect(JSON.parse(line)).toEqual(reply);
  });

  it("sse: a named event whose single data line survives line breaks in values", () => {
    const frame = sseFrame(reply);
    const lines = frame.split("\n");
    expect(lines[0]).toBe("event: reply");
    expect(lines[1]!.startsWith("data: ")).toBe(true);
    expect(lines.slice(2)).toEqual(["", ""]);
    expect(JSON.parse(lines[1]!.slice("data: ".length))).toEqual(reply);
  });

  it("the summary event carries everything but the replies, which were streamed already", () => {
    const result = summarise({
      requestId: "rid",
      targets: ["a", "b"],
      entries: [{ identity: "a", statuscode: 0, statusmsg: "OK", data: {}, ms: 1 }],
      unexpected: [],
      done: "timeout",
      elapsedMs: 9,
    });
    const event = summaryEvent(result);
    expect(event).toEqual({
      type: "summary",
      request_id: "rid",
      summary: result.summary,
      no_reply: ["b"],
      unexpected: [],
      conflicting: [],
    });
    expect("replies" in event).toBe(false);
  });
});
