import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Socket tests share one noisy 2-core machine; files run in parallel workers, tests inside a file in order.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2 } },
  },
})
