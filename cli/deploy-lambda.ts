// The AWS side of `choria-edge deploy lambda`: create or update the function, then its Function URL and the
// two resource policy statements a public (auth NONE) URL needs. Each write waits for the function's
// LastUpdateStatus to settle, since Lambda refuses a second change while one is in progress.
import {
  AddPermissionCommand,
  CreateFunctionCommand,
  CreateFunctionUrlConfigCommand,
  type FunctionConfiguration,
  GetFunctionCommand,
  GetFunctionUrlConfigCommand,
  type GetFunctionUrlConfigResponse,
  LambdaClient,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  UpdateFunctionUrlConfigCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";

export interface DeployPlan {
  name: string;
  role?: string | undefined;
  runtime: string;
  handler: string;
  memory: number;
  timeout: number;
  architecture: "x86_64" | "arm64";
  environment?: Record<string, string>;
  vpc?: { subnets: string[]; securityGroups: string[] };
  layers: string[];
}

export interface DeployOptions {
  dryRun: boolean;
  say(line: string): void;
}

export function lambdaClient(where: {
  region?: string | undefined;
  endpoint?: string | undefined;
}): LambdaClient {
  return new LambdaClient({
    ...(where.region ? { region: where.region } : {}),
    ...(where.endpoint ? { endpoint: where.endpoint } : {}),
  });
}

const WAIT = { maxWaitTime: 300, minDelay: 1, maxDelay: 5 };

function configuration(plan: DeployPlan) {
  return {
    FunctionName: plan.name,
    Runtime: plan.runtime as FunctionConfiguration["Runtime"],
    Handler: plan.handler,
    MemorySize: plan.memory,
    Timeout: plan.timeout,
    ...(plan.role ? { Role: plan.role } : {}),
    ...(plan.environment ? { Environment: { Variables: plan.environment } } : {}),
    ...(plan.vpc
      ? { VpcConfig: { SubnetIds: plan.vpc.subnets, SecurityGroupIds: plan.vpc.securityGroups } }
      : {}),
    ...(plan.layers.length > 0 ? { Layers: plan.layers } : {}),
  };
}

function describePlan(plan: DeployPlan, zipBytes: number): string {
  const env = plan.environment ? Object.keys(plan.environment).sort() : undefined;
  return [
    `  runtime ${plan.runtime} (${plan.architecture}), handler ${plan.handler}, ${plan.memory} MB, timeout ${plan.timeout} s`,
    `  code: ${(zipBytes / 1024).toFixed(1)} KiB zip`,
    `  environment: ${env === undefined ? "unchanged" : env.length === 0 ? "none" : env.join(", ")}`,
    `  vpc: ${plan.vpc ? `subnets ${plan.vpc.subnets.join(",")}; security groups ${plan.vpc.securityGroups.join(",")}` : "none"}`,
    ...(plan.layers.length > 0 ? [`  layers: ${plan.layers.join(", ")}`] : []),
  ].join("\n");
}

const notFound = (err: unknown) => (err as { name?: string }).name === "ResourceNotFoundException";

async function existing(client: LambdaClient, name: string): Promise<FunctionConfiguration | undefined> {
  try {
    return (await client.send(new GetFunctionCommand({ FunctionName: name }))).Configuration;
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

async function functionCode(
  client: LambdaClient,
  plan: DeployPlan,
  zip: Uint8Array,
  current: FunctionConfiguration | undefined,
): Promise<void> {
  const waitFor = { client, ...WAIT };
  if (current === undefined) {
    if (!plan.role) throw new Error("creating a function needs --role <execution role ARN>");
    await client.send(
      new CreateFunctionCommand({
        ...configuration(plan),
        Role: plan.role,
        PackageType: "Zip",
        Architectures: [plan.architecture],
        Code: { ZipFile: zip },
      }),
    );
    await waitUntilFunctionActiveV2(waitFor, { FunctionName: plan.name });
    return;
  }
  await client.send(
    new UpdateFunctionCodeCommand({
      FunctionName: plan.name,
      ZipFile: zip,
      Architectures: [plan.architecture],
    }),
  );
  await waitUntilFunctionUpdatedV2(waitFor, { FunctionName: plan.name });
  await client.send(new UpdateFunctionConfigurationCommand(configuration(plan)));
  await waitUntilFunctionUpdatedV2(waitFor, { FunctionName: plan.name });
}

async function urlConfig(
  client: LambdaClient,
  name: string,
): Promise<GetFunctionUrlConfigResponse | undefined> {
  try {
    return await client.send(new GetFunctionUrlConfigCommand({ FunctionName: name }));
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

/** A URL with auth NONE still needs the resource policy to let anyone invoke through it (and only so). */
async function publicAccess(client: LambdaClient, name: string): Promise<void> {
  const statements = [
    {
      StatementId: "choria-edge-url-invoke-url",
      Action: "lambda:InvokeFunctionUrl",
      FunctionUrlAuthType: "NONE" as const,
    },
    { StatementId: "choria-edge-url-invoke", Action: "lambda:InvokeFunction", InvokedViaFunctionUrl: true },
  ];
  for (const statement of statements) {
    try {
      await client.send(new AddPermissionCommand({ FunctionName: name, Principal: "*", ...statement }));
    } catch (err) {
      // The statement is there from an earlier deploy: nothing to change.
      if (
        (err as { name?: string }).name !== "ResourceConflictException" ||
        !/already exists/i.test(String(err))
      )
        throw err;
    }
  }
}

/** Deploys (or with dryRun only reads and says what it would do); the Function URL, when there is one. */
export async function deployLambda(
  client: LambdaClient,
  plan: DeployPlan,
  zip: Uint8Array,
  options: DeployOptions,
): Promise<string | undefined> {
  const current = await existing(client, plan.name);
  const url = current === undefined ? undefined : await urlConfig(client, plan.name);
  const wanted = { AuthType: "NONE" as const, InvokeMode: "RESPONSE_STREAM" as const };
  const urlRight = url?.AuthType === wanted.AuthType && url.InvokeMode === wanted.InvokeMode;
  const verb = options.dryRun ? "would " : "";
  options.say(
    `${verb}${current === undefined ? "create" : "update"} function ${plan.name}:\n${describePlan(plan, zip.byteLength)}`,
  );
  options.say(
    `${verb}${url === undefined ? "create its Function URL" : urlRight ? "keep its Function URL" : "update its Function URL"} (auth NONE, invoke mode RESPONSE_STREAM)`,
  );
  if (options.dryRun) return url?.FunctionUrl;

  await functionCode(client, plan, zip, current);
  let functionUrl = url?.FunctionUrl;
  if (url === undefined)
    functionUrl = (
      await client.send(new CreateFunctionUrlConfigCommand({ FunctionName: plan.name, ...wanted }))
    ).FunctionUrl;
  else if (!urlRight)
    functionUrl = (
      await client.send(new UpdateFunctionUrlConfigCommand({ FunctionName: plan.name, ...wanted }))
    ).FunctionUrl;
  await publicAccess(client, plan.name);
  return functionUrl;
}
