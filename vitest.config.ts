import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests bind real sockets and spawn children; two cores only.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
