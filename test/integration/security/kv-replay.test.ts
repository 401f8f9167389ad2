// KvReplayStore on a real nats-server with JetStream: the claim is JetStream KV's atomic create, so two
// gateway instances on separate connections can never both accept one request.
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  authenticate,
  generateHttpKey,
  KeyRegistry,
  KvReplayStore,
  replayWindowSeconds,
} from "../../../lib/security/http/mod.ts";
import { openReplayBucket } from "../../../lib/transport/kv.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { ALLOW_DEMO, signedRequest, signingKeyOf } from "../../unit/security/http/support.ts";

describe("KvReplayStore on JetStream KV", () => {
  let server: NatsServer;
  const connections: NatsConnection[] = [];

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: true });
    for (let i = 0; i < 2; i++) connections.push(await connect({ servers: server.url }));
  });

  afterAll(async () => {
    for (const connection of connections) await connection.close();
    await server?.dispose();
  });

  const stores = async (name: string, windowSeconds = 60) =>
    Promise.all(
      connections.map(
        async (connection) =>
          new KvReplayStore(await openReplayBucket(connection, { name, windowSeconds }), { windowSeconds }),
      ),
    );

  it("answers true for the first claim of a key and false after that, across connections", async () => {
    const [a, b] = await stores("replay_basic");
    expect(await a!.claim("key-1\nnonce:abc", 30)).toBe(true);
    expect(await a!.claim("key-1\nnonce:abc", 30)).toBe(false);
    expect(await b!.claim("key-1\nnonce:abc", 30)).toBe(false);
    expect(await b!.claim("key-1\nnonce:other", 30)).toBe(true);
  });

  it("lets exactly one of two stores win each raced key", async () => {
    const [a, b] = await stores("replay_race");
    const keys = Array.from({ length: 50 }, (_, i) => `race-${i}`);
    // Who asks first alternates, so that each side gets to be the one that loses the race.
    const outcomes = await Promise.all(
      keys.map(async (key, i) => {
        const [first, second] = i % 2 === 0 ? [a!, b!] : [b!, a!];
        const [won, alsoWon] = await Promise.all([first.claim(key, 30), second.claim(key, 30)]);
        return i % 2 === 0 ? [won, alsoWon] : [alsoWon, won];
      }),
    );
    for (const [viaA, viaB] of outcomes) expect(Number(viaA) + Number(viaB)).toBe(1);
    // Which side wins a race depends on whose publish reaches the server first, which the clients'
    // write batching decides; what must hold is that either side can win: each takes a key of its own.
    expect(await b!.claim("race-b-alone", 30)).toBe(true);
    expect(await a!.claim("race-b-alone", 30)).toBe(false);
    expect(await a!.claim("race-a-alone", 30)).toBe(true);
    expect(await b!.claim("race-a-alone", 30)).toBe(false);
  });

  it("lets a lapsed claim be taken over once, while the bucket still holds it", async () => {
    const [a, b] = await stores("replay_lapse");
    expect(await a!.claim("short", 1)).toBe(true);
    expect(await b!.claim("short", 1)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const both = await Promise.all([a!.claim("short", 1), b!.claim("short", 1)]);
    expect(both.filter(Boolean)).toHaveLength(1);
  });

  it("opens an existing bucket as it is, with other settings", async () => {
    await stores("replay_reopen", 60);
    const [again] = await stores("replay_reopen", 120);
    expect(await again!.claim("reopened", 30)).toBe(true);
  });

  it("refuses a replayed signed request at a second gateway instance", async () => {
    const generated = await generateHttpKey({
      id: "ci-1",
      caller: "ci",
      scheme: "ed25519",
      policy: ALLOW_DEMO,
    });
    const keys = await KeyRegistry.fromConfig({ keys: [generated.config] });
    const windowSeconds = replayWindowSeconds();
    const [a, b] = await stores("replay_gateways", windowSeconds);
    const request = await signedRequest(signingKeyOf(generated.keyFile));
    const [first, second] = await Promise.all([
      authenticate(request, { keys, replay: a! }),
      authenticate(request, { keys, replay: b! }),
    ]);
    expect([first.ok, second.ok].sort()).toEqual([false, true]);
    expect(first.ok ? second : first).toMatchObject({ ok: false, problem: "replay" });
  });
});
