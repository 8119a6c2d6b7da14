import { describe, expect, it } from "vitest";
import { contentStoreSuite, layerStoreSuite } from "../src/testsuite.js";
import { createMemoryLayerStore, openLayerStore } from "../src/index.js";
import { tempRoot } from "./helpers.js";

// The suites take the runner's functions: the testsuite entry point imports no vitest.
const api = { describe, it, expect };

layerStoreSuite(
  "filesystem",
  async () => {
    const t = await tempRoot();
    const store = await openLayerStore({ root: t.root });
    return { store, reopen: () => openLayerStore({ root: t.root }), cleanup: t.cleanup };
  },
  api,
);

contentStoreSuite(
  "filesystem",
  async () => {
    const t = await tempRoot();
    const store = await openLayerStore({ root: t.root });
    return { store: store.content, reopen: async () => (await openLayerStore({ root: t.root })).content, cleanup: t.cleanup };
  },
  api,
);

layerStoreSuite("memory", async () => ({ store: createMemoryLayerStore() }), api);
contentStoreSuite("memory", async () => ({ store: createMemoryLayerStore().content }), api);
