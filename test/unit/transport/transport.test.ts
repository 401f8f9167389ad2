import { describe, expect, it } from "vitest";
import { authOptions, redactUrl } from "../../../lib/transport/auth.ts";
import { reconnectDelay } from "../../../lib/transport/backoff.ts";

describe("reconnectDelay", () => {
  it("starts fast, grows with the outage, caps at five seconds, jitters ±20%", () => {
    expect(reconnectDelay(0, () => 0.5)).toBe(100);
    expect(reconnectDelay(2000, () => 0.5)).toBe(1000);
    expect(reconnectDelay(60_000, () => 0.5)).toBe(5000);
    expect(reconnectDelay(60_000, () => 0)).toBe(4000);
    expect(reconnectDelay(60_000, () => 0.999999)).toBe(6000);
    expect(reconnectDelay(0, () => 0)).toBe(80);
  });
});

describe("redactUrl", () => {
  it("hides user information and leaves other URLs alone", () => {
    expect(redactUrl("nats://user:secret@host:4222")).toBe("nats://redacted@host:4222");
    expect(redactUrl("tls://token@host:4222")).toBe("tls://redacted@host:4222");
    expect(redactUrl("nats://host:4222")).toBe("nats://host:4222");
    expect(redactUrl("host:4222")).toBe("host:4222");
  });
});

describe("authOptions", () => {
  it("maps each method onto nats.js connection options", () => {
    expect(authOptions()).toEqual({});
    expect(authOptions({ type: "userpass", user: "u", pass: "p" })).toEqual({ user: "u", pass: "p" });
    expect(authOptions({ type: "token", token: "t" })).toEqual({ token: "t" });
    expect(typeof authOptions({ type: "nkey", seed: "SUAB" }).authenticator).toBe("function");
    expect(() => authOptions({ type: "credentials", file: "/x.creds" })).toThrow(/cannot be read/);
    let read = "";
    const creds = authOptions({ type: "credentials", file: "/x.creds" }, (path) => {
      read = path;
      return new Uint8Array();
    });
    expect(read).toBe("/x.creds");
    expect(typeof creds.authenticator).toBe("function");
  });
});
