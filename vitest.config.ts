import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
    globalSetup: ["test/support/peers-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests each start their own nats-server on free ports, so files can run in parallel;
    // two forks match the two cores of the CI machine.
    pool: "forks",
    maxWorkers: 2,
  },
});
