import { expect, it, vi } from "vitest";
import { createGateway } from "../../../lib/gateway/app.ts";
import { gatewayAuthFromKeys } from "../../../lib/gateway/auth.ts";
import { gatewayConfigFrom } from "../../../lib/gateway/config.ts";
import { UpstreamUnavailable } from "../../../lib/gateway/nats.ts";
import { openApiDocument } from "../../../lib/gateway/openapi.ts";
import { loadSigner } from "../../../lib/security/choria.ts";
import { generateHttpKey } from "../../../lib/security/http/mod.ts";
import { testPki } from "../../support/pki.ts";

vi.mock("../../../lib/gateway/openapi.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../../lib/gateway/openapi.ts")>();
  return { ...real, openApiDocument: vi.fn(real.openApiDocument) };
});

// Every gateway a cold Worker isolate or Lambda makes would otherwise pay for the document (zod's
// toJSONSchema over every schema) before answering its first request.
it("the OpenAPI document is built on the first GET /v1/openapi.json, once per process", async () => {
  const config = gatewayConfigFrom({});
  if (!config.ok) throw new Error(config.error);
  const key = await generateHttpKey({
    id: "k",
    caller: "ops",
    scheme: "bearer",
    policy: {
      clusters: ["*"],
      collectives: ["*"],
      agents: ["rpcutil"],
      actions: ["rpcutil#*"],
      maxNodes: 1,
      maxTimeoutSeconds: 1,
    },
  });
  const make = async () =>
    createGateway({
      config: config.config,
      signer: await loadSigner((await testPki()).gateway),
      nats: {
        acquire: async () => {
          throw new UpstreamUnavailable("no NATS in this test");
        },
        status: () => "not-connected",
        close: async () => {},
      },
      auth: await gatewayAuthFromKeys(JSON.stringify({ keys: [key.config] })),
    });
  const first = await make();
  expect((await first.request("/healthz")).status).toBe(200);
  expect(openApiDocument).not.toHaveBeenCalled();

  const served = await (await first.request("/v1/openapi.json")).text();
  const rebuilt = await make();
  expect(await (await rebuilt.request("/v1/openapi.json")).text()).toBe(served);
  expect(openApiDocument).toHaveBeenCalledTimes(1);
  expect(JSON.parse(served).info.version).toBe("0.1.0");
});
