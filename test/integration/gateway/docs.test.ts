// /docs in a real headless Chromium (Debian's `chromium`): the reference renders every operation of the
// OpenAPI document from what the gateway serves, with name resolution switched off for everything but
// 127.0.0.1, and the page loads nothing from anywhere else.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { openApiDocument } from "../../../lib/gateway/mod.ts";
import { gatewaySettings, testKeys } from "./support.ts";

const run = promisify(execFile);
let gateway: RunningGateway;
let profile: string;

beforeAll(async () => {
  // /docs never touches NATS: nothing listens on this port.
  gateway = await startGateway(await gatewaySettings("nats://127.0.0.1:1", (await testKeys()).json), {
    log: () => {},
    audit: () => {},
  });
  profile = await mkdtemp(join(tmpdir(), "choria-edge-chromium-"));
});

afterAll(async () => {
  await gateway?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

describe("/docs", () => {
  it("renders every operation in headless Chromium, offline", async () => {
    const { stdout } = await run(
      "chromium",
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        `--user-data-dir=${profile}`,
        // Every name fails to resolve: a CDN asset would not load, and the page would come out empty.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--dump-dom",
        `${gateway.url}/docs`,
      ],
      { timeout: 60_000, maxBuffer: 32 * 1024 * 1024 },
    );
    const paths = openApiDocument("test").paths as Record<string, Record<string, { operationId: string }>>;
    const operations = Object.values(paths).flatMap((methods) => Object.values(methods));
    expect(operations.length).toBeGreaterThan(4);
    for (const { operationId } of operations)
      expect(stdout, operationId).toContain(`<section class="operation" id="op-${operationId}">`);
    expect(stdout).toContain('id="filter"');
    // Everything the page refers to is on this gateway: relative URLs and in-page anchors only.
    const urls = [...stdout.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1] ?? "");
    expect(urls.length).toBeGreaterThan(operations.length);
    expect(urls.filter((url) => !url.startsWith("/") && !url.startsWith("#"))).toEqual([]);
  }, 90_000);

  it("is served with a CSP that lets it load only from the gateway", async () => {
    const response = await fetch(`${gateway.url}/docs`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-security-policy")).toMatch(/default-src 'none'; script-src 'self'/);
    const script = await fetch(`${gateway.url}/docs/reference.js`);
    expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
  });
});
