import { openMemoryStore, openStore } from "../src/index.js";
import { afterEach, describe, expect, it } from "vitest";
import { imageStoreSuite, referenceStoreSuite, suiteConfig, tinyTar } from "../src/testsuite.js";
import { tempRoot } from "./helpers.js";

// The suites take the runner's functions: the testsuite entry point imports no vitest.
const api = { describe, it, expect, afterEach };

async function fsFixture() {
  const { dir, cleanup } = await tempRoot("berth-image-store-conf-");
  const store = await openStore({ root: dir });
  return {
    store,
    reopen: () => openStore({ root: dir }),
    cleanup: async () => {
      await store.close();
      await cleanup();
    },
  };
}

imageStoreSuite("fs", fsFixture, api);
referenceStoreSuite("fs", fsFixture, api);

async function memoryFixture() {
  const store = await openMemoryStore();
  return { store, cleanup: () => store.close() };
}

imageStoreSuite("memory", memoryFixture, api);
referenceStoreSuite("memory", memoryFixture, api);

describe("memory store: gc and fsck", () => {
  it("frees what a deleted image held and reports a clean store", async () => {
    const store = await openMemoryStore();
    try {
      const t = tinyTar("m.txt", "memory");
      const layer = await store.layers.register([t]);
      const image = await store.images.create(suiteConfig([layer.diffID], "mem"));
      await store.references.tag("mem:1", image.id);
      expect((await store.fsck()).problems).toEqual([]);
      expect((await store.gc()).removedBlobs).toEqual([]);
      await store.images.delete(image.id);
      const gc = await store.gc();
      expect(gc.removedLayers).toEqual([layer.chainID]);
      expect(gc.removedBlobs.sort()).toEqual([layer.blob.digest, image.id, image.manifestDigest].sort());
      expect((await store.fsck()).ok).toBe(true);
    } finally {
      await store.close();
    }
  });
});
