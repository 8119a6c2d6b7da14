import { defineConfig } from "vitest/config";

/**
 * Shared vitest settings: workspace packages resolve to their TypeScript
 * sources (the `source` export condition), so tests never run stale builds.
 */
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
