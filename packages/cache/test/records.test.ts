import { existsSync } from "node:fs";
import path from "node:path";
import { chainId, digestHex, sha256 } from "@berth/digest";
import { type LayerStore, openLayerStore } from "@berth/layer-store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { blobChainId, type CacheManager, openCacheManager, parseDuration, parseFilters } from "../src/records.js";
import { makeTarGz, tempDir } from "./helpers.js";

let root: string;
let cleanup: () => Promise<void>;
let layers: LayerStore;
let clock: number;
let cm: CacheManager;
const now = () => new Date(clock);

beforeEach(async () => {
  ({ dir: root, cleanup } = await tempDir());
  layers = await openLayerStore({ root });
  clock = Date.parse("2024-05-01T00:00:00Z");
  cm = await openCacheManager({ root, layers }, { now });
});
afterEach(async () => {
  await layers.close();
  await cleanup();
});

/** A base layer whose gzip blob is roughly `n` random-ish bytes. */
async function layer(name: string, n = 1000, parent: string | null = null) {
  const bytes = new Uint8Array(n).map((_, i) => (i * 7919 + name.charCodeAt(0) * 31 + (i >> 3)) % 251);
  return layers.register([await makeTarGz({ [name]: bytes })], parent);
}

describe("records", () => {
  it("creates one record per layer of the chain with ChainID and BlobChainID as BuildKit's SetBlob", async () => {
    const l1 = await layer("a");
    const l2 = await layer("b", 500, l1.chainID);
    const ref = await cm.getByLayer(l2.chainID, { description: "RUN b" });
    const records = await cm.records();
    expect(records).toHaveLength(2);
    const top = await cm.record(ref.id);
    const base = await cm.record(top.parent as string);
    expect(base.parent).toBeNull();
    expect(base.chainID).toBe(l1.diffID);
    expect(top.chainID).toBe(chainId([l1.diffID, l2.diffID]));
    const b1 = sha256(`${l1.blob.digest} ${l1.diffID}`);
    expect(base.blobChainID).toBe(b1);
    expect(top.blobChainID).toBe(sha256(`${b1} ${sha256(`${l2.blob.digest} ${l2.diffID}`)}`));
    expect(blobChainId(b1, l2.blob.digest, l2.diffID)).toBe(top.blobChainID);
    expect(top.id).toBe(digestHex(top.blobChainID).slice(0, 25));
    expect(top).toMatchObject({ diffID: l2.diffID, description: "RUN b", recordType: "regular", retain: "retain", usageCount: 0 });
    expect(top.blob).toEqual({ digest: l2.blob.digest, mediaType: l2.blob.mediaType });
    expect(await layers.holders(l2.chainID)).toContain(`cache:${top.id}`);
    await ref.release();
  });

  it("getByBlob registers a stored blob on a parent ref, verifying the DiffID annotation", async () => {
    const base = await layer("a");
    const baseRef = await cm.getByLayer(base.chainID);
    const bytes = await makeTarGz({ "blob.txt": "by blob" });
    const { digest, size } = await layers.content.put(bytes);
    const { layerDigests } = await import("@berth/digest");
    const { diffID } = await layerDigests([bytes]);
    const ref = await cm.getByBlob({ digest, size, annotations: { "containerd.io/uncompressed": diffID } }, baseRef, { description: "from blob" });
    expect(ref.chainID).toBe(chainId([base.diffID, diffID]));
    expect((await cm.record(ref.id)).parent).toBe(baseRef.id);
    const wrong = sha256("not the diffid");
    await expect(cm.getByBlob({ digest, size, annotations: { "containerd.io/uncompressed": wrong } }, null)).rejects.toMatchObject({ code: "ERR_DIGEST_MISMATCH" });
    await ref.release();
    await baseRef.release();
  });

  it("release updates last-used time and usage count; records persist across opens", async () => {
    const l1 = await layer("a");
    const ref = await cm.getByLayer(l1.chainID);
    expect((await cm.record(ref.id)).lastUsedAt).toBeUndefined();
    clock += 5000;
    await ref.release();
    await ref.release(); // idempotent
    const again = await openCacheManager({ root, layers });
    const r = await again.record(ref.id);
    expect(r.usageCount).toBe(1);
    expect(r.lastUsedAt).toBe(new Date(clock).toISOString());
    await expect(again.record("0".repeat(25))).rejects.toMatchObject({ code: "ERR_CACHE_RECORD_NOT_FOUND" });
    await expect(again.record("../etc")).rejects.toMatchObject({ code: "ERR_CACHE_RECORD_ID" });
  });

  it("a ref clones, gives its parent, extracts its chain and tells its sizes; a ref that only looks leaves last use alone", async () => {
    const l1 = await layer("a", 3000);
    const l2 = await layer("b", 500, l1.chainID);
    const ref = await cm.getByLayer(l2.chainID);
    const copy = await cm.get(ref.id, { noUpdateLastUsed: true });
    const twin = await copy.clone();
    const below = await ref.parent();
    expect(below?.chainID).toBe(l1.chainID);
    expect(await below?.parent()).toBeNull();
    expect((await cm.du({ filters: ["inuse"] })).map((u) => u.id).sort()).toEqual([ref.id, below!.id].sort());

    // extract: the chain's snapshot, layer by layer; a second call has nothing to do; mount gives its tree
    expect(await ref.extract()).toEqual([l1.chainID, l2.chainID]);
    expect(await twin.extract()).toEqual([]);
    expect(existsSync(path.join(await ref.mount(), "b"))).toBe(true);
    expect(existsSync(path.join(await below!.mount(), "b"))).toBe(false);

    const size = await ref.size();
    expect(size).toEqual({ blob: l2.blob.size, unpacked: 500, tar: l2.size });
    expect(size.tar).toBeGreaterThan(size.unpacked);

    // the refs that only looked: released, they change nothing; the real one counts once
    clock += 1000;
    await copy.release();
    await twin.release();
    expect(await ref.info()).toMatchObject({ usageCount: 0 });
    expect((await ref.info()).lastUsedAt).toBeUndefined();
    await ref.release();
    await below!.release();
    expect(await cm.record(ref.id)).toMatchObject({ usageCount: 1, lastUsedAt: new Date(clock).toISOString() });
    expect((await cm.record(below!.id)).usageCount).toBe(1);
    expect(await cm.du({ filters: ["inuse"] })).toEqual([]);
  });

  it("computes sizes lazily, once, single flight under concurrency", async () => {
    const l1 = await layer("a", 3000);
    const ref = await cm.getByLayer(l1.chainID);
    expect((await cm.record(ref.id)).size).toBeUndefined();
    const sizes = await Promise.all([cm.size(ref.id), cm.size(ref.id), cm.size(ref.id), cm.du()]);
    expect(sizes[0]).toBe(l1.blob.size);
    expect(sizes[1]).toBe(l1.blob.size);
    expect(cm.sizeComputations).toBe(1);
    expect((await cm.record(ref.id)).size).toBe(l1.blob.size);
    await cm.size(ref.id);
    expect(cm.sizeComputations).toBe(1);
    await ref.release();
  });

  it("counts a blob shared by two records once", async () => {
    const p1 = await layer("p1");
    const p2 = await layer("p2");
    const bytes = await makeTarGz({ shared: "same bytes" });
    const c1 = await layers.register([bytes], p1.chainID);
    const c2 = await layers.register([bytes], p2.chainID);
    expect(c1.blob.digest).toBe(c2.blob.digest);
    (await cm.getByLayer(c1.chainID)).release();
    await (await cm.getByLayer(c2.chainID)).release();
    const du = await cm.du();
    const withBlob = du.filter((u) => u.chainID === c1.chainID || u.chainID === c2.chainID);
    expect(withBlob.map((u) => u.blobSize)).toEqual([c1.blob.size, c1.blob.size]);
    expect(withBlob.map((u) => u.size).sort()).toEqual([0, c1.blob.size].sort());
    const total = du.reduce((n, u) => n + u.size, 0);
    expect(total).toBe(p1.blob.size + p2.blob.size + c1.blob.size);
  });

  it("du reports in-use for refs and their ancestors, and filters", async () => {
    const l1 = await layer("a");
    const l2 = await layer("b", 100, l1.chainID);
    const other = await layer("c");
    const ref = await cm.getByLayer(l2.chainID, { description: "top" });
    await (await cm.getByLayer(other.chainID, { description: "other" })).release();
    const du = await cm.du();
    const byChain = new Map(du.map((u) => [u.chainID, u]));
    expect(byChain.get(l1.chainID)?.inUse).toBe(true);
    expect(byChain.get(l2.chainID)?.inUse).toBe(true);
    expect(byChain.get(other.chainID)?.inUse).toBe(false);
    expect((await cm.du({ filters: ["inuse"] })).map((u) => u.chainID).sort()).toEqual([l1.chainID, l2.chainID].sort());
    expect((await cm.du({ filters: ["description==other"] })).map((u) => u.chainID)).toEqual([other.chainID]);
    expect((await cm.du({ filters: ["description~=^to"] })).map((u) => u.chainID)).toEqual([l2.chainID]);
    await expect(cm.du({ filters: ["bogus=1"] })).rejects.toMatchObject({ code: "ERR_CACHE_FILTER" });
    await ref.release();
  });
});

describe("prune", () => {
  it("never removes in-use records or parents of kept records; frees bytes on disk", async () => {
    const l1 = await layer("a", 4000);
    const l2 = await layer("b", 4000, l1.chainID);
    const free = await layer("c", 4000);
    const held = await cm.getByLayer(l2.chainID);
    await (await cm.getByLayer(free.chainID)).release();
    const blobFile = path.join(root, "blobs", "sha256", digestHex(free.blob.digest));
    expect(existsSync(blobFile)).toBe(true);
    const res = await cm.prune();
    expect(res.removed.map((u) => u.chainID)).toEqual([free.chainID]);
    expect(res.reclaimedBytes).toBe(free.blob.size);
    expect(res.freedBytes).toBeGreaterThanOrEqual(free.blob.size);
    expect(existsSync(blobFile)).toBe(false);
    expect(await layers.has(free.chainID)).toBe(false);
    expect(await layers.has(l2.chainID)).toBe(true);
    // Once released, the chain goes leaf first, then its parent, in one prune.
    await held.release();
    const res2 = await cm.prune();
    expect(res2.removed.map((u) => u.chainID)).toEqual([l2.chainID, l1.chainID]);
    expect(await cm.records()).toEqual([]);
    expect(await layers.has(l1.chainID)).toBe(false);
  });

  it("keeps a parent whose child is kept by keepDuration", async () => {
    const l1 = await layer("a");
    const l2 = await layer("b", 100, l1.chainID);
    const r = await cm.getByLayer(l2.chainID);
    await r.release(); // both records exist; only the top one was used
    clock += 60_000;
    const res = await cm.prune({ keepDuration: 120_000 });
    expect(res.removed).toEqual([]);
    expect(await cm.records()).toHaveLength(2);
  });

  it("honours keepDuration exactly", async () => {
    const a = await layer("a");
    const b = await layer("b");
    const c = await layer("c");
    await (await cm.getByLayer(a.chainID)).release(); // used at t0
    clock += 10_000;
    await (await cm.getByLayer(b.chainID)).release(); // t0+10s
    clock += 10_000;
    await (await cm.getByLayer(c.chainID)).release(); // t0+20s
    clock += 5_000; // now t0+25s
    // Keep what was used within the last 15 s: b (15 s ago, not after the cut-off) goes, c stays.
    const res = await cm.prune({ keepDuration: 15_000 });
    expect(res.removed.map((u) => u.chainID).sort()).toEqual([a.chainID, b.chainID].sort());
    expect((await cm.records()).map((r) => r.chainID)).toEqual([c.chainID]);
    const res2 = await cm.prune({ filters: ["until=4s"] });
    expect(res2.removed.map((u) => u.chainID)).toEqual([c.chainID]);
  });

  it("honours keepBytes exactly, least recently / least often used first", async () => {
    const ls = [];
    for (const [i, n] of ["a", "b", "c", "d"].entries()) {
      const l = await layer(n, 2000 + i * 500);
      ls.push(l);
      clock += 1000;
      await (await cm.getByLayer(l.chainID)).release();
    }
    // Use "a" again so it is the most valuable now.
    clock += 1000;
    await (await cm.get((await cm.findByChainID(ls[0]?.chainID as string))?.id as string)).release();
    const sizes = ls.map((l) => l.blob.size);
    const total = sizes.reduce((x, y) => x + y, 0);
    // Keep exactly the total minus b's size: only b (least recently used, used once) goes.
    const keepBytes = total - (sizes[1] as number);
    const res = await cm.prune({ keepBytes });
    expect(res.removed.map((u) => u.chainID)).toEqual([ls[1]?.chainID]);
    const left = (await cm.du()).reduce((n, u) => n + u.size, 0);
    expect(left).toBe(keepBytes);
    // One byte less forces one more removal: c is next.
    const res2 = await cm.prune({ keepBytes: keepBytes - 1 });
    expect(res2.removed.map((u) => u.chainID)).toEqual([ls[2]?.chainID]);
    expect((await cm.du()).reduce((n, u) => n + u.size, 0)).toBeLessThanOrEqual(keepBytes - 1);
  });

  it("skips layers shared with an image unless all", async () => {
    const l = await layer("img");
    await layers.acquire(l.chainID, "image:sha256:x");
    await (await cm.getByLayer(l.chainID)).release();
    expect((await cm.du())[0]?.shared).toBe(true);
    expect((await cm.prune()).removed).toEqual([]);
    const res = await cm.prune({ all: true });
    expect(res.removed).toHaveLength(1);
    expect(res.freedBytes).toBe(0); // the image still holds the layer
    expect(await layers.has(l.chainID)).toBe(true);
  });

  it("removes a default-policy record when its last ref is released", async () => {
    const l = await layer("tmp");
    const r = await cm.getByLayer(l.chainID, { retain: "default" });
    expect(await cm.records()).toHaveLength(1);
    await r.release();
    expect(await cm.records()).toHaveLength(0);
  });

  it("repair drops holders without records", async () => {
    const l = await layer("orphan");
    await layers.acquire(l.chainID, `cache:${"a".repeat(25)}`);
    const res = await cm.repair();
    expect(res.releasedHolders).toEqual([{ chainID: l.chainID, holder: `cache:${"a".repeat(25)}` }]);
  });
});

describe("filters and durations", () => {
  it("parses durations like Go", () => {
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("24h")).toBe(86_400_000);
    expect(() => parseDuration("1d")).toThrow();
  });
  it("parses filters", () => {
    expect(parseFilters(["type=regular,inuse", "until=10s"])).toEqual({
      alternatives: [[{ field: "type", op: "==", value: "regular" }, { field: "inuse", op: "present", value: "" }]],
      until: 10_000,
    });
  });
});



describe("prune over an image store", () => {
  it("frees the cache's bytes through the store's GC and leaves images intact", async () => {
    const { openStore } = await import("@berth/image-store");
    const { dir: sroot, cleanup: c2 } = await tempDir();
    const store = await openStore({ root: sroot });
    try {
      const imgLayer = await store.layers.register([await makeTarGz({ "img.txt": "image layer" })]);
      const config = JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [imgLayer.diffID] }, history: [{ created_by: "x" }] });
      const img = await store.images.create(new TextEncoder().encode(config));
      const lease = await store.layers.lease();
      const cacheLayer = await store.layers.register([await makeTarGz({ "cache.txt": "x".repeat(5000) })], imgLayer.chainID, { lease });
      const m = await openCacheManager(store);
      await (await m.getByLayer(cacheLayer.chainID, { description: "RUN cache" })).release();
      await lease.release();
      const du = await m.du();
      expect(du.find((u) => u.chainID === imgLayer.chainID)?.shared).toBe(true);
      const res = await m.prune();
      expect(res.removed.map((u) => u.chainID)).toEqual([cacheLayer.chainID]);
      expect(res.freedBytes).toBeGreaterThanOrEqual(cacheLayer.blob.size);
      expect(await store.layers.has(cacheLayer.chainID)).toBe(false);
      expect((await store.images.get(img.id)).id).toBe(img.id);
      expect(await store.layers.has(imgLayer.chainID)).toBe(true);
      expect((await m.prune({ all: true })).freedBytes).toBe(0); // the image's layer stays
      expect(await store.layers.has(imgLayer.chainID)).toBe(true);
    } finally {
      await store.close();
      await c2();
    }
  });
});
