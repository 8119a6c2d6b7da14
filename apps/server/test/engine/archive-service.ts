/**
 * For the archive tests of phase 1: the load, save and store-info part of the
 * image service, made of the same package calls `@berth/image-service` makes
 * (`@berth/docker-archive`'s `load` and `planSave`/`planChunks` over a real
 * `@berth/image-store` store). It reports no per-layer progress (that is the
 * service's), and every other method is unavailable until the image service
 * lands — a test that reaches one fails with a 503 naming it.
 */
import { UnavailableError } from "@berth/digest";
import { familiarReference } from "@berth/oci";
import { load, planChunks, planSave } from "@berth/docker-archive";
import { openStore } from "@berth/image-store";
import type { EngineImageService } from "../../src/engine/index.js";

export async function archiveService(root: string): Promise<{ service: EngineImageService; close(): Promise<void> }> {
  const store = await openStore({ root });
  const later = (method: string) => async () => {
    throw new UnavailableError(`test: ${method} waits for @berth/image-service (phase 2)`);
  };
  const service: EngineImageService = {
    async load(archive, { onEvent }) {
      const result = await load(store, archive, { overwriteTags: true });
      for (const img of result.images) {
        if (img.tags.length === 0) onEvent({ type: "loaded", id: img.id });
        for (const tag of img.tags) onEvent({ type: "loaded", tag: familiarReference(tag), id: img.id });
      }
    },
    async save(names) {
      const plan = await planSave(store, names);
      return { size: plan.size, stream: planChunks(plan) };
    },
    async storeInfo() {
      return { root: store.root, images: await store.images.len() };
    },
    list: later("list"),
    inspect: later("inspect"),
    history: later("history"),
    tag: later("tag"),
    remove: later("remove"),
    prune: later("prune"),
    diskUsage: later("diskUsage"),
    importImage: later("importImage"),
  };
  return { service, close: () => store.close() };
}
