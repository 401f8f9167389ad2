import { describe, expect, it } from "vitest";
import {
  collectorEnvName,
  parseCollectorConfig,
  parseDuration,
} from "../../../../lib/results/jobs/config.ts";

const HOST = { hostname: "box.example.net", pid: 42 };

describe("collector configuration", () => {
  it("reads durations with units", () => {
    expect(parseDuration("250")).toBe(250);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("2h")).toBe(7_200_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration("7 days")).toBeUndefined();
  });

  it("has defaults that work for the local stack", () => {
    const parsed = parseCollectorConfig([], {}, HOST);
    expect(parsed).toMatchObject({
      ok: true,
      config: {
        servers: ["nats://127.0.0.1:4222"],
        name: "choria-edge-collector-box_example_net-42",
        bucket: "choria_edge_jobs",
        retentionMs: 604_800_000,
        capture: "stream",
        allowHttpCallbacks: false,
        allowPrivateCallbacks: false,
      },
    });
  });

  it("takes environment variables, and flags over them", () => {
    const env = {
      [collectorEnvName("retention")]: "1d",
      [collectorEnvName("servers")]: "nats://a:4222,nats://b:4222",
      [collectorEnvName("callback-secret")]: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      [collectorEnvName("allow-http-callbacks")]: "yes",
      [collectorEnvName("allow-private-callbacks")]: "yes",
    };
    const parsed = parseCollectorConfig(
      [
        "--retention=2h",
        "--capture",
        "queue",
        "--user",
        "u",
        "--password",
        "p",
        "--inbox-prefix",
        "_INBOX_c",
      ],
      env,
      HOST,
    );
    expect(parsed).toMatchObject({
      ok: true,
      config: {
        retentionMs: 7_200_000,
        servers: ["nats://a:4222", "nats://b:4222"],
        capture: "queue",
        callbackSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        allowHttpCallbacks: true,
        allowPrivateCallbacks: true,
        auth: { type: "userpass", user: "u", pass: "p" },
        inboxPrefix: "_INBOX_c",
      },
    });
  });

  it("says what is wrong by the option's name", () => {
    expect(parseCollectorConfig(["--retention", "soon"], {}, HOST)).toEqual({
      ok: false,
      error: "--retention: expected a duration such as 500ms, 30s, 5m, 2h or 7d",
    });
    expect(parseCollectorConfig(["--capture", "sometimes"], {}, HOST)).toMatchObject({
      ok: false,
      error: /^--capture:/,
    });
    expect(parseCollectorConfig(["--callback-secret", "hunter2"], {}, HOST)).toMatchObject({ ok: false });
    expect(parseCollectorConfig(["--inbox-prefix", "_INBOX.>"], {}, HOST)).toMatchObject({
      ok: false,
      error: /^--inbox-prefix:/,
    });
    expect(parseCollectorConfig(["--token", "t", "--user", "u"], {}, HOST)).toMatchObject({ ok: false });
    expect(parseCollectorConfig(["--bogus"], {}, HOST)).toEqual({
      ok: false,
      error: "unknown option '--bogus'",
    });
    expect(parseCollectorConfig(["--help"], {}, HOST)).toEqual({ ok: false, help: true });
  });
});
