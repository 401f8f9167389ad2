// The gateway's NATS options for a production cluster: nkey or user auth, TLS files, its own inbox
// prefix, and the replicas of the buckets it creates.
import { describe, expect, it } from "vitest";
import { gatewaySettings } from "../../../functions/gateway-env.ts";

const material = ["--cert-pem", "CERT", "--key-pem", "KEY", "--keys-json", '{"keys":[]}'];

describe("gateway NATS settings", () => {
  it("takes an nkey seed from the environment, TLS files, an inbox prefix and replicas", async () => {
    const parsed = await gatewaySettings(
      [
        ...material,
        "--nats-servers",
        "tls://127.0.0.1:4222,tls://127.0.0.1:4223",
        "--nats-tls-ca",
        "/etc/ca.pem",
        "--nats-tls-cert",
        "/etc/gw.pem",
        "--nats-tls-key",
        "/etc/gw-key.pem",
        "--nats-inbox-prefix",
        "_INBOX_gateway",
        "--replicas",
        "3",
      ],
      { CHORIA_EDGE_GATEWAY_NATS_NKEY_SEED: "SUAEXAMPLE" },
    );
    if (!parsed.ok) throw new Error("error" in parsed ? parsed.error : "help");
    expect(parsed.settings).toMatchObject({
      natsServers: ["tls://127.0.0.1:4222", "tls://127.0.0.1:4223"],
      natsAuth: { type: "nkey", seed: "SUAEXAMPLE" },
      natsTls: { caFile: "/etc/ca.pem", certFile: "/etc/gw.pem", keyFile: "/etc/gw-key.pem" },
      natsInboxPrefix: "_INBOX_gateway",
      replicas: 3,
    });
  });

  it("keeps the earlier credentials and token options, and refuses two auth methods or a bad count", async () => {
    const token = await gatewaySettings([...material, "--nats-token", "t"], {});
    expect(token.ok && token.settings.natsAuth).toEqual({ type: "token", token: "t" });
    expect(token.ok && token.settings.replicas).toBeUndefined();
    const both = await gatewaySettings(
      [...material, "--nats-token", "t", "--nats-credentials", "/x.creds"],
      {},
    );
    expect(both).toMatchObject({ ok: false, error: expect.stringContaining("choose one") });
    const replicas = await gatewaySettings([...material, "--replicas", "7"], {});
    expect(replicas).toMatchObject({ ok: false, error: expect.stringContaining("--replicas") });
    const inbox = await gatewaySettings([...material, "--nats-inbox-prefix", "_INBOX.>"], {});
    expect(inbox).toMatchObject({ ok: false, error: expect.stringContaining("--nats-inbox-prefix") });
  });
});
