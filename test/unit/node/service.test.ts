import { describe, expect, it } from "vitest";
import { directPacket, signDiscoveryRequest } from "../../../lib/client/request.ts";
import { generateFleet } from "../../../lib/node/fleet.ts";
import { NodeHost } from "../../../lib/node/responder.ts";
import { serveNodes } from "../../../lib/node/service.ts";
import { broadcastSubject } from "../../../lib/protocol/subjects.ts";
import { encodeTransport } from "../../../lib/protocol/transport.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import { loadSigner } from "../../../lib/security/choria.ts";
import type { BusHandler, MessageBus } from "../../../lib/transport/bus.ts";
import { testPki } from "../../support/pki.ts";

const REPLY_TO = "mcollective.reply.37bdf08389145a56c13096c178802d3b.0123456789abcdef0123456789abcdef";

/** Enough of a bus to deliver one message to the host and see when its replies are published. */
function fakeBus(onPublish: () => void) {
  const handlers = new Map<string, BusHandler>();
  const bus = {
    name: "fake",
    subscribe(subject: string, handler: BusHandler) {
      handlers.set(subject, handler);
      return { unsubscribe() {}, drain: async () => {} };
    },
    publish() {
      onPublish();
      return true;
    },
    connectedUrl: () => "nats://127.0.0.1:4222",
    flush: async () => {},
  } as unknown as MessageBus;
  return { bus, handlers };
}

describe("serveNodes", () => {
  it("publishes each node's reply as it is made, not the host's whole batch at the end", async () => {
    const pki = await testPki();
    const fleet = generateFleet({ count: 50, seed: 5 });
    // Whether the event loop turned between the first reply and the last: a batch goes out in one turn.
    let published = 0;
    let turned = false;
    const { bus, handlers } = fakeBus(() => {
      if (published++ === 0) setImmediate(() => (turned = true));
    });
    const service = serveNodes(bus, new NodeHost({ fleet, trust: TrustStore.fromPem(pki.caPem) }));
    const client = {
      signer: await loadSigner(pki.client),
      callerid: "choria=rip.mcollective",
      senderid: "client.example.net",
    };
    const signed = await signDiscoveryRequest(client, { collective: "mcollective" });
    const subject = broadcastSubject("mcollective", "discovery");
    const body = encodeTransport(directPacket(signed, { replyTo: REPLY_TO, sender: client.senderid }));
    handlers.get(subject)?.({ subject, data: body } as unknown as Parameters<BusHandler>[0]);
    await service.idle();
    expect(published).toBe(fleet.length);
    expect(turned).toBe(true);
  });
});
