import { defineConfig, mergeConfig } from "vitest/config";
import shared from "../../vitest.shared.js";

// npm installs from the registry: minutes on a cold cache, not seconds.
export default mergeConfig(shared, defineConfig({ test: { testTimeout: 300_000, hookTimeout: 600_000 } }));
