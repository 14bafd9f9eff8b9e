import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The reliability suite has its own run: npm run test:reliability (vitest.reliability.config.ts).
    exclude: [...configDefaults.exclude, "test/reliability/**"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests bind real sockets and spawn children; two cores only.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
