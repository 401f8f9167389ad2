import { describe, expect, it } from "vitest";
import { parsePayload } from "../../../lib/triggers/mod.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("parsePayload", () => {
  it("parses JSON, with or without parameters, and +json media types", () => {
    expect(parsePayload("application/json", bytes('{"a":1}'))).toEqual({ ok: true, payload: { a: 1 } });
    expect(parsePayload("Application/JSON; charset=utf-8", bytes("[true]"))).toEqual({
      ok: true,
      payload: [true],
    });
    expect(parsePayload("application/cloudevents+json", bytes('"x"'))).toEqual({ ok: true, payload: "x" });
  });

  it("reads a Slack slash command form as its fields", () => {
    const form = "command=%2Fdeploy&text=web+prod&user_name=steve";
    expect(parsePayload("application/x-www-form-urlencoded", bytes(form))).toEqual({
      ok: true,
      payload: { command: "/deploy", text: "web prod", user_name: "steve" },
    });
  });

  it("unwraps a form whose only field is a JSON payload (Slack interactivity, GitHub form deliveries)", () => {
    const json = JSON.stringify({ type: "block_actions", user: { id: "U1" }, actions: [{ value: "go" }] });
    const form = new URLSearchParams({ payload: json }).toString();
    expect(parsePayload("application/x-www-form-urlencoded", bytes(form))).toEqual({
      ok: true,
      payload: { type: "block_actions", user: { id: "U1" }, actions: [{ value: "go" }] },
    });
    expect(parsePayload("application/x-www-form-urlencoded", bytes("payload=%7Bnot"))).toMatchObject({
      ok: false,
      detail: expect.stringContaining("the payload field is not JSON"),
    });
  });

  it("keeps repeated fields, and a field named __proto__ as a plain field", () => {
    const parsed = parsePayload("application/x-www-form-urlencoded", bytes("tag=a&tag=b&tag=c&__proto__=x"));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const payload = parsed.payload as Record<string, unknown>;
    expect(payload.tag).toEqual(["a", "b", "c"]);
    expect(Object.hasOwn(payload, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(payload)).toBe(Object.prototype);
  });

  it("refuses bodies it cannot read", () => {
    expect(parsePayload("application/json", bytes("{nope"))).toMatchObject({
      ok: false,
      detail: expect.stringContaining("the body is not JSON"),
    });
    expect(parsePayload("application/json", new Uint8Array([0x7b, 0xff, 0x7d]))).toEqual({
      ok: false,
      detail: "the body is not UTF-8",
    });
    // The detail names the header, and does not repeat its value (it reaches the audit line).
    const text = parsePayload("text/plain; secret=abc123", bytes("hi"));
    expect(text).toMatchObject({ ok: false, detail: expect.stringContaining("unsupported content type") });
    expect(!text.ok && text.detail).not.toMatch(/text\/plain|abc123/);
    expect(parsePayload(null, bytes("{}"))).toMatchObject({
      ok: false,
      detail: expect.stringContaining("no Content-Type header"),
    });
    // Nor does it repeat the parser's message, which quotes the text around the error.
    const broken = parsePayload("application/json", bytes('{"token": s3cr3t}'));
    expect(broken).toEqual({ ok: false, detail: "the body is not JSON" });
  });
});
