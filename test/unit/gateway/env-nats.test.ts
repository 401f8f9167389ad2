// The gateway's NATS options for a production cluster: nkey or user auth, TLS files, its own inbox
// prefix, and the replicas of the buckets it creates.
import { describe, expect, it } from "vitest";
import { gatewaySettings } from "../../../functions/gateway-env.ts";
import { gatewayNatsSettings, gatewayOptionName } from "../../../functions/gateway-nats.ts";

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

describe("the same NATS settings in every runtime", () => {
  const workersEnv = (vars: Record<string, string>) => (flag: string) =>
    vars[gatewayOptionName(flag, "workers")];

  it("takes user/password, creds text and the creds file on Node and Lambda", async () => {
    const user = await gatewaySettings(material, {
      CHORIA_EDGE_GATEWAY_NATS_USER: "gw",
      CHORIA_EDGE_GATEWAY_NATS_PASSWORD: "pw",
    });
    expect(user.ok && user.settings.natsAuth).toEqual({ type: "userpass", user: "gw", pass: "pw" });
    const creds = await gatewaySettings(material, { CHORIA_EDGE_GATEWAY_NATS_CREDS: "JWT and seed" });
    expect(creds.ok && creds.settings.natsAuth).toEqual({ type: "creds", text: "JWT and seed" });
    const file = await gatewaySettings([...material, "--nats-credentials", "/gw.creds"], {});
    expect(file.ok && file.settings.natsAuth).toEqual({ type: "credentials", file: "/gw.creds" });
    const two = await gatewaySettings([...material, "--nats-creds", "x", "--nats-token", "t"], {});
    expect(two).toMatchObject({ ok: false, error: expect.stringContaining("choose one") });
    const ws = await gatewaySettings([...material, "--nats-servers", "ws://127.0.0.1:4223"], {});
    expect(ws).toMatchObject({ ok: false, error: expect.stringContaining("speaks NATS over TCP") });
  });

  it("takes every auth a Worker can use, with its inbox prefix and replicas", () => {
    const servers = { CHORIA_EDGE_GATEWAY_NATS_SERVERS: "wss://nats.example.com:443" };
    const cases: [Record<string, string>, unknown][] = [
      [{ CHORIA_EDGE_GATEWAY_NATS_TOKEN: "t" }, { type: "token", token: "t" }],
      [{ CHORIA_EDGE_GATEWAY_NATS_NKEY_SEED: "SUA" }, { type: "nkey", seed: "SUA" }],
      [{ CHORIA_EDGE_GATEWAY_NATS_CREDS: "text" }, { type: "creds", text: "text" }],
      [
        { CHORIA_EDGE_GATEWAY_NATS_USER: "u", CHORIA_EDGE_GATEWAY_NATS_PASSWORD: "p" },
        { type: "userpass", user: "u", pass: "p" },
      ],
    ];
    for (const [vars, auth] of cases)
      expect(gatewayNatsSettings(workersEnv({ ...servers, ...vars }), "workers")).toEqual({
        natsServers: ["wss://nats.example.com:443"],
        natsAuth: auth,
      });
    expect(
      gatewayNatsSettings(
        workersEnv({
          ...servers,
          CHORIA_EDGE_GATEWAY_NATS_INBOX_PREFIX: "_INBOX_gw",
          CHORIA_EDGE_GATEWAY_REPLICAS: "3",
        }),
        "workers",
      ),
    ).toMatchObject({ natsInboxPrefix: "_INBOX_gw", replicas: 3 });
  });

  it("refuses on Workers what workerd cannot do, naming the variable and what to do instead", () => {
    const base = { CHORIA_EDGE_GATEWAY_NATS_SERVERS: "wss://nats.example.com" };
    const refused: [string, string][] = [
      ["CHORIA_EDGE_GATEWAY_NATS_TLS_CERT", "cannot present a TLS client certificate"],
      ["CHORIA_EDGE_GATEWAY_NATS_TLS_KEY", "cannot present a TLS client certificate"],
      ["CHORIA_EDGE_GATEWAY_NATS_TLS_CA", "public certificate authorities"],
      ["CHORIA_EDGE_GATEWAY_NATS_CREDENTIALS", "CHORIA_EDGE_GATEWAY_NATS_CREDS"],
    ];
    for (const [variable, why] of refused) {
      const result = gatewayNatsSettings(workersEnv({ ...base, [variable]: "/x.pem" }), "workers");
      expect(result).toEqual({ error: expect.stringContaining(`${variable} is set: `) });
      expect(result).toEqual({ error: expect.stringContaining(why) });
    }
    expect(
      gatewayNatsSettings(
        workersEnv({ CHORIA_EDGE_GATEWAY_NATS_SERVERS: "nats://127.0.0.1:4222" }),
        "workers",
      ),
    ).toEqual({ error: expect.stringContaining("is not ws:// or wss://") });
    expect(
      gatewayNatsSettings(
        workersEnv({ ...base, CHORIA_EDGE_GATEWAY_NATS_TOKEN: "t", CHORIA_EDGE_GATEWAY_NATS_NKEY_SEED: "S" }),
        "workers",
      ),
    ).toEqual({ error: expect.stringContaining("choose one") });
  });
});
