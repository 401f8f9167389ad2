import { describe, expect, it } from "vitest";
import {
  brokerConfigFrom,
  brokerUsage,
  envName,
  isSubjectPattern,
  metricsAddress,
  parseBrokerConfig,
} from "../../../lib/federation/config.ts";

const HOST = { hostname: "fed1.example.net", pid: 4242 };

function parsed(argv: string[], env: Record<string, string> = {}) {
  const result = parseBrokerConfig(argv, env, HOST);
  if (!result.ok) throw new Error("error" in result ? result.error : "help");
  return result.config;
}

function failure(argv: string[], env: Record<string, string> = {}): string {
  const result = parseBrokerConfig(argv, env, HOST);
  if (result.ok || !("error" in result)) throw new Error("expected an error");
  return result.error;
}

describe("broker configuration", () => {
  it("has defaults that work for the local stack", () => {
    const config = parsed([]);
    expect(config).toMatchObject({
      cluster: "mcollective",
      instance: "fed1_example_net-4242",
      identity: "fed1.example.net",
      collectives: ["mcollective"],
      allowSubjects: [],
      maxHops: 10,
      maxBytes: 1048576,
      maxTargets: 10000,
      inFlight: 1000,
      maxPendingBytes: 64 * 1024 * 1024,
      batchSize: 500,
      statsIntervalMs: 5000,
      metricsListen: "127.0.0.1:9464",
      recordRoute: false,
      federation: { servers: ["nats://127.0.0.1:4222"], auth: { type: "none" } },
      collective: { servers: ["nats://127.0.0.1:4222"], auth: { type: "none" } },
    });
  });

  it("reads CHORIA_EDGE_BROKER_* variables, and flags win over them", () => {
    const env = {
      CHORIA_EDGE_BROKER_CLUSTER: "east",
      CHORIA_EDGE_BROKER_COLLECTIVES: "acme, globex",
      CHORIA_EDGE_BROKER_MAX_HOPS: "5",
      CHORIA_EDGE_BROKER_SERVERS: "nats://a:4222,nats://b:4222",
      CHORIA_EDGE_BROKER_COLLECTIVE_SERVERS: "nats://c:4222",
      CHORIA_EDGE_BROKER_FEDERATION_USER: "broker",
      CHORIA_EDGE_BROKER_FEDERATION_PASSWORD: "s3cret",
      CHORIA_EDGE_BROKER_RECORD_ROUTE: "true",
    };
    const config = parsed(
      ["--cluster", "west", "--max-hops=7", "--allow-subjects", "x.node.>", "--allow-subjects", "y.*.z"],
      env,
    );
    expect(config.cluster).toBe("west");
    expect(config.maxHops).toBe(7);
    expect(config.collectives).toEqual(["acme", "globex"]);
    expect(config.allowSubjects).toEqual(["x.node.>", "y.*.z"]);
    expect(config.federation.servers).toEqual(["nats://a:4222", "nats://b:4222"]);
    expect(config.collective.servers).toEqual(["nats://c:4222"]);
    expect(config.federation.auth).toEqual({ type: "userpass", user: "broker", pass: "s3cret" });
    expect(config.collective.auth).toEqual({ type: "none" });
    expect(config.recordRoute).toBe(true);
  });

  it("takes each auth method and TLS files per side", () => {
    expect(parsed(["--collective-token", "t0k"]).collective.auth).toEqual({ type: "token", token: "t0k" });
    expect(parsed(["--federation-nkey-seed", "SUAB"]).federation.auth).toEqual({
      type: "nkey",
      seed: "SUAB",
    });
    expect(parsed(["--federation-credentials", "/etc/b.creds"]).federation.auth).toEqual({
      type: "credentials",
      file: "/etc/b.creds",
    });
    expect(
      parsed(["--collective-tls-ca", "/ca.pem", "--collective-tls-cert", "/c.pem"]).collective.tls,
    ).toEqual({
      caFile: "/ca.pem",
      certFile: "/c.pem",
    });
    expect(failure(["--federation-token", "a", "--federation-user", "u"])).toMatch(/choose one/);
  });

  it("refuses unknown options, missing values and invalid values", () => {
    expect(failure(["--nope"])).toMatch(/unknown option '--nope'/);
    expect(failure(["--cluster"])).toMatch(/needs a value/);
    expect(failure(["stray"])).toMatch(/unexpected argument/);
    expect(failure(["--max-hops", "0"])).toMatch(/maxHops/);
    expect(failure(["--batch-size", "many"])).toMatch(/batchSize/);
    expect(failure(["--cluster", "a.b"])).toMatch(/cluster/);
    expect(failure(["--collectives", "mco*"])).toMatch(/collective/);
    expect(failure(["--allow-subjects", "a.>.b"])).toMatch(/pattern/);
    expect(failure(["--metrics-listen", "localhost"])).toMatch(/host:port/);
  });

  it("reads --reply-collectives (unset: the same as --collectives); no collective may start with $", () => {
    expect(parsed(["--collectives", "acme"]).replyCollectives).toBeUndefined();
    expect(parsed(["--reply-collectives", "acme,globex"]).replyCollectives).toEqual(["acme", "globex"]);
    expect(parsed([], { CHORIA_EDGE_BROKER_REPLY_COLLECTIVES: "globex" }).replyCollectives).toEqual([
      "globex",
    ]);
    expect(failure(["--reply-collectives", "a.b"])).toMatch(/replyCollectives/);
    expect(failure(["--reply-collectives", "$JS"])).toMatch(/\$/);
    expect(failure(["--collectives", "$SYS"])).toMatch(/\$/);
  });

  it("answers --help with usage naming every variable", () => {
    expect(parseBrokerConfig(["--help"], {}, HOST)).toEqual({ ok: false, help: true });
    const usage = brokerUsage();
    expect(usage).toContain("--federation-credentials");
    expect(usage).toContain(envName("collective-tls-key"));
    expect(envName("max-hops")).toBe("CHORIA_EDGE_BROKER_MAX_HOPS");
  });

  it("parses the metrics address or switches it off", () => {
    expect(metricsAddress(parsed(["--metrics-listen", "0.0.0.0:9100"]))).toEqual({
      host: "0.0.0.0",
      port: 9100,
    });
    expect(metricsAddress(parsed(["--metrics-listen", ":9100"]))).toEqual({ host: "127.0.0.1", port: 9100 });
    expect(metricsAddress(parsed(["--metrics-listen", "off"]))).toBeUndefined();
  });

  it("validates an embedded configuration object", () => {
    const result = brokerConfigFrom({ instance: "i1", identity: "b1", maxTargets: 20 });
    expect(result.ok && result.config.maxTargets).toBe(20);
    expect(brokerConfigFrom({ identity: "b1" }).ok).toBe(false);
  });

  it("recognises NATS subject patterns", () => {
    for (const ok of ["a.b.c", "a.*.c", "a.>", "*", ">"]) expect(isSubjectPattern(ok), ok).toBe(true);
    for (const bad of ["", "a..b", "a.>.b", "a b.c", "a.b*"]) expect(isSubjectPattern(bad), bad).toBe(false);
  });
});
