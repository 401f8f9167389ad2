import { describe, expect, it } from "vitest";
import { authOptions, redactUrl } from "../../../lib/transport/auth.ts";
import { reconnectDelay } from "../../../lib/transport/backoff.ts";

describe("reconnectDelay", () => {
  it("starts fast, grows with the outage, caps at one second for the first minute, then at five", () => {
    expect(reconnectDelay(0, () => 1)).toBe(100);
    expect(reconnectDelay(600, () => 1)).toBe(300);
    expect(reconnectDelay(2000, () => 1)).toBe(1000);
    expect(reconnectDelay(59_000, () => 1)).toBe(1000);
    expect(reconnectDelay(120_000, () => 1)).toBe(2000);
    expect(reconnectDelay(300_000, () => 1)).toBe(5000);
    expect(reconnectDelay(3_600_000, () => 1)).toBe(5000);
  });

  it("jitters downwards only, so that the cap holds", () => {
    expect(reconnectDelay(0, () => 0)).toBe(60);
    expect(reconnectDelay(3_600_000, () => 0)).toBe(3000);
    expect(reconnectDelay(3_600_000, () => 0.5)).toBe(4000);
  });

  // Issue 12, finding 14: a server down for a few seconds was retried seconds apart, so a broker came back
  // up to 5.7 s after the server did.
  it("never waits more than a second between attempts while the outage is under a minute", () => {
    for (let t = 0; t < 60_000; t += 250) {
      for (const r of [0, 0.5, 0.999999]) expect(reconnectDelay(t, () => r)).toBeLessThanOrEqual(1000);
    }
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
