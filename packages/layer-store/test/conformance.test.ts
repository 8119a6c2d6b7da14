import { contentStoreSuite, layerStoreSuite } from "../src/testsuite.js";
import { createMemoryLayerStore, openLayerStore } from "../src/index.js";
import { tempRoot } from "./helpers.js";

layerStoreSuite("filesystem", async () => {
  const t = await tempRoot();
  const store = await openLayerStore({ root: t.root });
  return { store, reopen: () => openLayerStore({ root: t.root }), cleanup: t.cleanup };
});

contentStoreSuite("filesystem", async () => {
  const t = await tempRoot();
  const store = await openLayerStore({ root: t.root });
  return { store: store.content, reopen: async () => (await openLayerStore({ root: t.root })).content, cleanup: t.cleanup };
});

layerStoreSuite("memory", async () => ({ store: createMemoryLayerStore() }));
contentStoreSuite("memory", async () => ({ store: createMemoryLayerStore().content }));
