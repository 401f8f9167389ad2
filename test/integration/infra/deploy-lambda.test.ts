// `choria-edge deploy lambda` as an operator runs it (its own process, the real AWS SDK) against a local
// Lambda control plane: what the SDK sent (the zip with the streaming handler, runtime, timeout,
// environment), that a second deploy updates instead of creating, and that failures read as one clear line.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ControlPlane, startControlPlane } from "../../support/lambda-control-plane.ts";
import { runCli } from "./cli-support.ts";

let plane: ControlPlane;
let dir: string;
let zipFile: string;

beforeAll(async () => {
  [plane, dir] = await Promise.all([
    startControlPlane(),
    mkdtemp(join(tmpdir(), "choria-edge-deploy-test-")),
  ]);
  zipFile = join(dir, "uploaded.zip");
  await writeFile(
    join(dir, "gateway.env"),
    "# the federation\nCHORIA_EDGE_GATEWAY_NATS_SERVERS=nats://10.0.1.5:4222\nCHORIA_EDGE_GATEWAY_CLUSTERS=C1=mcollective\n",
  );
});

afterAll(async () => {
  await plane?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Credentials for the SDK to sign with, and nothing from this machine's own AWS setup. */
function awsEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    AWS_ACCESS_KEY_ID: "AKIDLOCALTEST",
    AWS_SECRET_ACCESS_KEY: "local-secret",
    AWS_REGION: "eu-west-1",
    AWS_EC2_METADATA_DISABLED: "true",
    ...extra,
  };
}

async function deploy(args: string[], env = awsEnv()) {
  const result = await runCli(["deploy", "lambda", "--endpoint", plane.endpoint, ...args], env).done;
  // A failure is a sentence for the operator, never a stack trace.
  expect(result.stderr).not.toMatch(/^\s+at /m);
  return result;
}

const operations = (from: number) => plane.calls.slice(from).map((c) => c.operation);
const ROLE = "arn:aws:iam::123456789012:role/choria-edge-gateway";
const URL_SHAPE = /^https:\/\/[a-z0-9]+\.lambda-url\.eu-west-1\.on\.aws\/\n$/;

describe("choria-edge deploy lambda", () => {
  it("builds the bundle and creates the function, configured, with a streaming Function URL", async () => {
    const args = ["--role", ROLE, "--runtime", "nodejs24.x", "--env-file", join(dir, "gateway.env")];
    const vpc = ["--subnets", "subnet-1,subnet-2", "--security-groups", "sg-1", "--env", "EXTRA=yes"];
    const result = await deploy([...args, ...vpc]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(URL_SHAPE);

    const create = plane.calls.find((c) => c.operation === "CreateFunction")?.body ?? {};
    expect(create).toMatchObject({
      FunctionName: "choria-edge-gateway",
      Runtime: "nodejs24.x",
      Handler: "index.stream",
      Role: ROLE,
      Timeout: 30,
      MemorySize: 512,
      PackageType: "Zip",
      Environment: {
        Variables: {
          CHORIA_EDGE_GATEWAY_NATS_SERVERS: "nats://10.0.1.5:4222",
          CHORIA_EDGE_GATEWAY_CLUSTERS: "C1=mcollective",
          EXTRA: "yes",
        },
      },
      VpcConfig: { SubnetIds: ["subnet-1", "subnet-2"], SecurityGroupIds: ["sg-1"] },
    });
    // The uploaded zip holds the bundle, and the bundle exports the handler the configuration names.
    await writeFile(zipFile, plane.functions.get("choria-edge-gateway")?.zip ?? Buffer.alloc(0));
    const listing = execFileSync("/usr/bin/unzip", ["-Z1", zipFile], { encoding: "utf8" });
    expect(listing.split("\n")).toContain("index.mjs");
    const bundle = execFileSync("/usr/bin/unzip", ["-p", zipFile, "index.mjs"], {
      encoding: "utf8",
      maxBuffer: 64 << 20,
    });
    expect(bundle).toMatch(/export\s*\{[^}]*\bas stream\b/);

    // The URL was created only once the function was Active (a write on a Pending function is refused).
    const sent = operations(0);
    const createUrl = sent.indexOf("CreateFunctionUrlConfig");
    expect(sent.slice(0, 2)).toEqual(["GetFunction", "CreateFunction"]);
    expect(sent.slice(2, createUrl)).toContain("GetFunction");
    expect(sent.slice(createUrl)).toEqual(["CreateFunctionUrlConfig", "AddPermission", "AddPermission"]);
    const url = plane.calls.find((c) => c.operation === "CreateFunctionUrlConfig")?.body;
    expect(url).toEqual({ AuthType: "NONE", InvokeMode: "RESPONSE_STREAM" });
    const permissions = plane.calls.filter((c) => c.operation === "AddPermission").map((c) => c.body);
    expect(permissions).toEqual([
      expect.objectContaining({
        Action: "lambda:InvokeFunctionUrl",
        Principal: "*",
        FunctionUrlAuthType: "NONE",
      }),
      expect.objectContaining({
        Action: "lambda:InvokeFunction",
        Principal: "*",
        InvokedViaFunctionUrl: true,
      }),
    ]);
  }, 60_000);

  it("updates code, then configuration once the code update has settled, on a second deploy", async () => {
    const from = plane.calls.length;
    const result = await deploy(["--zip", zipFile, "--timeout", "45", "--env", "ONLY=this"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(URL_SHAPE);
    const sent = operations(from);
    expect(sent).not.toContain("CreateFunction");
    expect(sent).not.toContain("CreateFunctionUrlConfig");
    expect(sent.filter((o) => o.startsWith("Update"))).toEqual([
      "UpdateFunctionCode",
      "UpdateFunctionConfiguration",
    ]);
    // Between them at least one GetFunction waited for LastUpdateStatus (the plane refuses a write before).
    const code = sent.indexOf("UpdateFunctionCode");
    expect(sent.slice(code + 1, sent.indexOf("UpdateFunctionConfiguration"))).toContain("GetFunction");
    const update = plane.calls.slice(from).find((c) => c.operation === "UpdateFunctionConfiguration")?.body;
    expect(update).toMatchObject({
      Timeout: 45,
      Handler: "index.stream",
      Environment: { Variables: { ONLY: "this" } },
    });
    expect(update).not.toHaveProperty("Role");
    expect(update).not.toHaveProperty("VpcConfig");
  }, 60_000);

  it("prints the plan on --dry-run and makes only read calls", async () => {
    const from = plane.calls.length;
    const result = await deploy(["--zip", zipFile, "--dry-run"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("would update function choria-edge-gateway");
    expect(result.stdout).toContain("environment: unchanged");
    expect(result.stdout).toMatch(/Function URL: https:/);
    expect(operations(from)).toEqual(["GetFunction", "GetFunctionUrlConfig"]);
  }, 30_000);

  it("says there are no credentials, without a stack trace", async () => {
    const env = awsEnv();
    delete env.AWS_ACCESS_KEY_ID;
    delete env.AWS_SECRET_ACCESS_KEY;
    const result = await deploy(["--zip", zipFile], {
      ...env,
      AWS_CONFIG_FILE: join(dir, "none"),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, "none"),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("choria-edge deploy lambda: no AWS credentials: set AWS_PROFILE");
  }, 30_000);

  it("names the permissions when AWS refuses, and says to wait when the function is busy", async () => {
    plane.refuse.denied.add("UpdateFunctionCode");
    const denied = await deploy(["--zip", zipFile]);
    plane.refuse.denied.clear();
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("AWS refused (AccessDeniedException): User is not authorized");
    expect(denied.stderr).toContain("iam:PassRole");

    plane.refuse.busy = true;
    const busy = await deploy(["--zip", zipFile]);
    plane.refuse.busy = false;
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain("the function is busy with another change (ResourceConflictException)");
  }, 30_000);

  it("refuses a timeout below the gateway's wait budget, an environment over 4 KB, and creating without a role", async () => {
    const short = await deploy(["--zip", zipFile, "--timeout", "3"]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain("--timeout: 10 to 900 s");
    const big = await deploy(["--zip", zipFile, "--env", `CHORIA_EDGE_GATEWAY_KEY_PEM=${"k".repeat(4100)}`]);
    expect(big.code).toBe(2);
    expect(big.stderr).toContain("over Lambda's 4096: put PEM and creds files in a layer (--layer)");
    const noRole = await deploy(["--zip", zipFile, "--name", "another"]);
    expect(noRole.code).toBe(1);
    expect(noRole.stderr).toContain("creating a function needs --role");
  }, 30_000);
});
