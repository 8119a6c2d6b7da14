/**
 * BuildKit's inline cache as dockerd 20.10 writes it (`DOCKER_BUILDKIT=1`,
 * `--build-arg BUILDKIT_INLINE_CACHE=1`), imported from the image in a berth
 * store. Skips without dockerd; fails under BERTH_REQUIRE_PEERS=1.
 */
import path from "node:path";
import { chainId } from "@berth/digest";
import { load } from "@berth/docker-archive";
import { openStore } from "@berth/image-store";
import { BUSYBOX_TAG, buildImage, busyboxBase, dockerd, dockerSave } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contentStoreFetcher } from "../src/fetcher.js";
import { importCache, INLINE_CACHE_FIELD } from "../src/import.js";
import { openCacheManager } from "../src/records.js";
import { tempDir } from "./helpers.js";
import { nonce } from "./peer-util.js";

const peer = await dockerd();

describe.skipIf(!peer)("inline cache vs dockerd BuildKit", () => {
  let work: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir: work, cleanup } = await tempDir());
    await busyboxBase(peer!);
  });
  afterAll(async () => {
    const tags = (await peer!.run(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.split("\n").filter((t) => t.startsWith("berth-cache-inline/"));
    if (tags.length > 0) await peer!.docker(["rmi", "-f", ...tags]);
    await cleanup();
  });

  it("every record with layers resolves to a prefix of the image's DiffIDs with the right ChainID", async () => {
    const n = nonce();
    const tag = `berth-cache-inline/img-${n}:1`;
    const built = await buildImage(peer!, {
      tag,
      buildkit: true,
      buildArgs: { BUILDKIT_INLINE_CACHE: "1" },
      dockerfile: [`FROM ${BUSYBOX_TAG}`, `RUN echo ${n} > /a.txt`, "COPY f.txt /f.txt", "ENV X=1", "RUN cat /f.txt /a.txt > /b.txt", ""].join("\n"),
      files: { "f.txt": { content: "inline\n", mtime: 0 } },
    });
    const archive = path.join(work, `inline-${n}.tar`);
    await dockerSave(peer!, tag, archive);
    const store = await openStore({ root: path.join(work, "store") });
    try {
      await load(store, archive);
      const img = await store.images.get(built.id);
      expect(typeof img.config[INLINE_CACHE_FIELD]).toBe("string");
      const diffIds = img.config.rootfs.diff_ids;
      expect(diffIds.length).toBe(4); // busybox, RUN, COPY, RUN
      const m = await store.images.manifest(img.id);
      const cm = await openCacheManager(store);
      const imp = await importCache(store, contentStoreFetcher(store.content), {
        manifest: { digest: m.digest, size: m.bytes.length, ...(m.manifest.mediaType ? { mediaType: m.manifest.mediaType } : {}) },
        manager: cm,
      });
      expect(imp.kind).toBe("inline");
      const withLayers = imp.keys().filter((k) => imp.probe(k));
      expect(withLayers.length).toBe(3); // RUN, COPY, RUN; the FROM image's layer is no result of its own
      const seenDepths = new Set<number>();
      for (const key of withLayers) {
        const res = await imp.lookup(key);
        expect(res).toBeDefined();
        const k = res!.diffIDs.length;
        expect(res!.diffIDs).toEqual(diffIds.slice(0, k));
        expect(res!.chainID).toBe(chainId(diffIds.slice(0, k)));
        seenDepths.add(k);
        await res!.ref?.release();
      }
      // The records cover every layer the build made.
      expect([...seenDepths].sort()).toEqual([2, 3, 4]);
      // Each looked-up chain (and the base below it) is a cache record now, sharing the image's layers.
      const du = await cm.du();
      expect(du.map((u) => u.chainID).sort()).toEqual(diffIds.map((_, i) => chainId(diffIds.slice(0, i + 1))).sort());
      expect(du.every((u) => u.shared)).toBe(true); // the image holds them too
    } finally {
      await store.close();
    }
  });
});
