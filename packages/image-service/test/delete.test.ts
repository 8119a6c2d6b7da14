import type { Store } from "@berth/image-store";
import { describe, expect, it } from "vitest";
import { ImageService, ImageServiceErrorCode } from "../src/index.js";
import { freshService, tarStream } from "./helpers.js";

/** The store, counting its GCs. */
function countingGc(store: Store): { store: Store; gcs: () => number } {
  let n = 0;
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "gc")
        return (...args: Parameters<Store["gc"]>) => {
          n++;
          return target.gc(...args);
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { store: wrapped, gcs: () => n };
}

async function chain(svc: ImageService) {
  const base = await svc.import(tarStream({ base: "b" }), { tags: ["base:1"] });
  const mid = await svc.build({ base: "base:1", layers: [tarStream({ mid: "m" })] });
  const top = await svc.build({ base: mid.id, layers: [tarStream({ top: "t" })], tags: ["top:1"] });
  return { base, mid, top };
}

describe("remove (moby's ImageDelete rules)", () => {
  it("by name untags first; the image goes with its last reference", async () => {
    const { svc, store } = await freshService();
    const img = await svc.import(tarStream({ a: "1" }), { tags: ["a:1", "a:2"] });
    let [r] = await svc.remove(["a:1"]);
    expect(r!.items).toEqual([{ untagged: "a:1" }]);
    expect(await store.images.has(img.id)).toBe(true);
    [r] = await svc.remove(["a:2"]);
    expect(r!.items).toEqual([{ untagged: "a:2" }, { deleted: img.id }, { deleted: img.layers[0]!.chainID }]);
    expect(await store.images.has(img.id)).toBe(false);
    expect(await store.layers.has(img.layers[0]!.chainID)).toBe(false);
  });

  it("the last tag of a repository takes the image's digest references in it along (moby; as dockerd answered after a pull)", async () => {
    const { svc, store } = await freshService();
    const img = await svc.import(tarStream({ p: "1" }), { tags: ["127.0.0.1:5000/full/big:1", "127.0.0.1:5000/full/big:2", "other/big:2"] });
    const digestRef = `127.0.0.1:5000/full/big@sha256:${"e8".repeat(32)}`;
    await store.references.tag(digestRef, img.id);
    // another tag of the repository stays: so does the digest reference
    let [r] = await svc.remove(["127.0.0.1:5000/full/big:1"]);
    expect(r!.items).toEqual([{ untagged: "127.0.0.1:5000/full/big:1" }]);
    [r] = await svc.remove(["127.0.0.1:5000/full/big:2"]);
    expect(r!.items).toEqual([{ untagged: "127.0.0.1:5000/full/big:2" }, { untagged: digestRef }]);
    expect(await store.images.has(img.id)).toBe(true);
    [r] = await svc.remove(["other/big:2"]);
    expect(r!.items.slice(0, 2)).toEqual([{ untagged: "other/big:2" }, { deleted: img.id }]);
    // a pulled image's only tag: rmi deletes it
    const pulled = await svc.import(tarStream({ q: "1" }), { tags: ["127.0.0.1:5000/app:1"] });
    await store.references.tag(`127.0.0.1:5000/app@sha256:${"ab".repeat(32)}`, pulled.id);
    [r] = await svc.remove(["127.0.0.1:5000/app:1"]);
    expect(r!.items.slice(0, 3)).toEqual([{ untagged: "127.0.0.1:5000/app:1" }, { untagged: `127.0.0.1:5000/app@sha256:${"ab".repeat(32)}` }, { deleted: pulled.id }]);
  });

  it("by ID: several repositories need force; children refuse even with force (checked first)", async () => {
    const { svc, store } = await freshService();
    const solo = await svc.import(tarStream({ s: "1" }), { tags: ["solo:1", "elsewhere/solo:1"] });
    let [r] = await svc.remove([solo.id]);
    expect(r!.error).toMatchObject({ code: ImageServiceErrorCode.IMAGE_IN_USE, message: expect.stringContaining("must be forced") });
    [r] = await svc.remove([solo.id], { force: true });
    expect(r!.items).toContainEqual({ deleted: solo.id });
    const { base, top } = await chain(svc);
    await svc.tag("base:1", "other:1");
    [r] = await svc.remove([base.id]);
    expect(r!.error).toMatchObject({ code: ImageServiceErrorCode.IMAGE_HAS_CHILDREN });
    [r] = await svc.remove([base.id], { force: true });
    expect(r!.error).toMatchObject({ code: ImageServiceErrorCode.IMAGE_HAS_CHILDREN, message: expect.stringContaining("cannot be forced") });
    expect(await store.references.referencesOf(base.id)).toHaveLength(2);
    // the last tag of an image with children: only untagged
    [r] = await svc.remove(["other:1"]);
    [r] = await svc.remove(["base:1"]);
    expect(r!.items).toEqual([{ untagged: "base:1" }]);
    expect(await store.images.has(base.id)).toBe(true);
    expect(top.id).toBeDefined();
  });

  it("deleting the top prunes untagged childless parents (not with prune: false), all in one GC", async () => {
    const { svc: plain, store: raw } = await freshService();
    const { base, mid, top } = await chain(plain);
    await raw.references.untag("docker.io/library/base:1");
    const { store, gcs } = countingGc(raw);
    const svc = new ImageService(store);
    const [r] = await svc.remove(["top:1"], { prune: false });
    expect(r!.items.slice(0, 2)).toEqual([{ untagged: "top:1" }, { deleted: top.id }]);
    expect(await raw.images.has(mid.id)).toBe(true);
    expect(gcs()).toBe(1);
    const [r2] = await svc.remove([mid.id]);
    const deleted = r2!.items.filter((i) => "deleted" in i).map((i) => (i as { deleted: string }).deleted);
    expect(deleted[0]).toBe(mid.id);
    expect(deleted).toContain(base.id);
    expect(deleted.indexOf(base.id)).toBeGreaterThan(0);
    expect(gcs()).toBe(2);
    expect(await raw.images.len()).toBe(0);
    expect(await raw.layers.list()).toEqual([]);
  });

  it("several names: one GC, a failing name reported while the others go", async () => {
    const { svc: plain, store: raw } = await freshService();
    const a = await plain.import(tarStream({ a: "1" }), { tags: ["a:1"] });
    const b = await plain.import(tarStream({ b: "1" }), { tags: ["b:1"] });
    const { store, gcs } = countingGc(raw);
    const out = await new ImageService(store).remove(["a:1", "nope:1", "b:1"]);
    expect(out.map((o) => o.error?.constructor.name)).toEqual([undefined, "NotFoundError", undefined]);
    expect(out[0]!.items).toContainEqual({ deleted: a.id });
    expect(out[2]!.items).toContainEqual({ deleted: b.id });
    expect(gcs()).toBe(1);
  });
});

describe("list and prune", () => {
  it("filters as docker does: dangling, reference globs, labels, before/since; -a shows intermediates", async () => {
    const { svc } = await freshService();
    const { base, mid, top } = await chain(svc);
    const lab = await svc.import(tarStream({ l: "1" }), { tags: ["lab/x:1"], changes: ["LABEL k=v"] });
    const ids = async (opts: Parameters<ImageService["list"]>[0]) => (await svc.list(opts)).map((i) => i.id).sort();
    expect(await ids({})).toEqual([base.id, top.id, lab.id].sort());
    expect(await ids({ all: true })).toEqual([base.id, mid.id, top.id, lab.id].sort());
    expect(await ids({ filters: { reference: ["lab/*"] } })).toEqual([lab.id]);
    expect(await ids({ filters: { reference: ["top"] } })).toEqual([top.id]);
    expect(await ids({ filters: { label: ["k=v"] } })).toEqual([lab.id]);
    expect(await ids({ filters: { dangling: ["true"] } })).toEqual([]);
    const listed = await svc.list({ filters: { reference: ["lab/x:1"] } });
    expect(listed[0]!.repoTags).toEqual(["lab/x:1"]);
    expect(listed[0]!.labels).toEqual({ k: "v" });
    await expect(svc.list({ filters: { color: ["red"] } })).rejects.toMatchObject({ code: ImageServiceErrorCode.INVALID_FILTER });
    await expect(svc.list({ filters: { dangling: ["maybe"] } })).rejects.toMatchObject({ code: ImageServiceErrorCode.INVALID_FILTER });
  });

  it("prune removes dangling images (and with all, every childless one), reporting reclaimed bytes", async () => {
    const { svc, store } = await freshService();
    const kept = await svc.import(tarStream({ k: "1" }), { tags: ["kept:1"], changes: ["LABEL keep=yes"] });
    const dangling = await svc.import(tarStream({ d: "1" }));
    let r = await svc.prune();
    expect(r.deleted).toContainEqual({ deleted: dangling.id });
    expect(r.spaceReclaimed).toBeGreaterThan(0);
    expect(await store.images.has(kept.id)).toBe(true);
    r = await svc.prune({ all: true, filters: { "label!": ["keep=yes"] } });
    expect(r.deleted).toEqual([]);
    r = await svc.prune({ all: true });
    expect(r.deleted.slice(0, 2)).toEqual([{ untagged: "kept:1" }, { deleted: kept.id }]);
    expect(await store.images.len()).toBe(0);
  });

  it("prune leaves an image another operation is still creating (its config under a live lease, not tagged yet)", async () => {
    const { svc, store } = await freshService();
    const done = await svc.import(tarStream({ d: "1" }));
    // what a load or a pushed manifest does between creating an image and tagging it
    const lease = await store.layers.lease();
    const layer = await store.layers.register(tarStream({ f: "1" }), null, { lease });
    const config = JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layer.diffID] } });
    const inFlight = await store.images.create(config, { lease });
    const r = await svc.prune();
    expect(r.deleted).toContainEqual({ deleted: done.id });
    expect(r.deleted).not.toContainEqual({ deleted: inFlight.id });
    expect(await store.images.has(inFlight.id)).toBe(true);
    await lease.release();
    expect((await svc.prune()).deleted).toContainEqual({ deleted: inFlight.id });
  });
});
