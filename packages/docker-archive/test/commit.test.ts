/**
 * The load transaction: a failure injected midway (by a store double over
 * an in-memory store) leaves the store's images and tags as they were.
 */
import type { Digest } from "@berth/digest";
import { openMemoryStore } from "@berth/image-store";
import { beforeEach, describe, expect, it } from "vitest";
import { commitPlan, decideTags, LoadTransaction } from "../src/commit.js";
import { type ArchiveStore, load } from "../src/index.js";
import { planArchive } from "../src/plan.js";
import { archiveOf, imageOf, layerTar, legacyEntries, type TestImage, tarOf } from "./helpers.js";

type Memory = Awaited<ReturnType<typeof openMemoryStore>>;

/**
 * `base` as an {@link ArchiveStore} whose `images.create` fails on call
 * number `failCreateAt` and `references.tag` on call `failTagAt`; with
 * `partialCreateMany`, a `createMany` that creates the first config, then fails.
 */
function double(base: Memory, opts: { failCreateAt?: number; failTagAt?: number; partialCreateMany?: boolean }): ArchiveStore {
  let creates = 0;
  let tags = 0;
  const s = base as unknown as ArchiveStore;
  return {
    content: s.content,
    layers: s.layers,
    lease: () => s.lease(),
    images: {
      get: (id) => s.images.get(id),
      delete: (id) => s.images.delete(id),
      setParent: (id, p) => s.images.setParent(id, p),
      manifest: (id) => s.images.manifest(id),
      create: async (c, o) => {
        if (++creates === opts.failCreateAt) throw new Error(`injected: create #${creates}`);
        return s.images.create(c, o);
      },
      ...(opts.partialCreateMany
        ? {
            createMany: async (configs: Iterable<Uint8Array>, o?: { lease?: never }) => {
              await s.images.create([...configs][0]!, o);
              throw new Error("injected: createMany after the first image");
            },
          }
        : {}),
    },
    references: {
      resolve: (r) => s.references.resolve(r),
      untag: (r) => s.references.untag(r),
      referencesOf: (id) => s.references.referencesOf(id),
      tag: async (ref, id, o) => {
        if (++tags === opts.failTagAt) throw new Error(`injected: tag #${tags}`);
        return s.references.tag(ref, id, o);
      },
    },
  };
}

async function snapshot(store: Memory) {
  return { images: (await store.images.ids()).sort(), refs: await store.references.list() };
}

async function image(label: string): Promise<TestImage> {
  return imageOf([await layerTar({ base: "shared\n" }), await layerTar({ [label]: `${label}\n` })], { label });
}

let base: Memory;
let old: TestImage;
let a: TestImage;
let b: TestImage;
let c: TestImage;
beforeEach(async () => {
  base = await openMemoryStore();
  [old, a, b, c] = await Promise.all(["old", "a", "b", "c"].map(image)) as [TestImage, TestImage, TestImage, TestImage];
  // Already stored: an image tagged app:1 and keep:1, and image b itself.
  await load(base as unknown as ArchiveStore, [await tarOf(legacyEntries([{ img: old, tags: ["app:1", "keep:1"] }, { img: b, tags: null }]))]);
});

/** a, b, c: a takes app:1 from the old image, c gets a new tag. */
const archive = () => legacyEntries([{ img: a, tags: ["app:1", "a:1"] }, { img: b, tags: ["b:1"] }, { img: c, tags: ["c:1"] }]);

async function commitThrough(store: ArchiveStore) {
  const plan = await planArchive(archiveOf(archive()));
  const tags = await decideTags(store.references, plan.tags, "move");
  const tx = await LoadTransaction.begin(store);
  const result = commitPlan(tx, { images: plan.images, tags: tags.steps, maxLayer: 1 << 30 });
  return { tx, result };
}

describe("LoadTransaction", () => {
  it("an image create failing midway: rollback deletes the images this load created, nothing else", async () => {
    const before = await snapshot(base);
    // a is created (1), b existed (2, its create succeeds and is not this load's), c fails (3).
    const { tx, result } = await commitThrough(double(base, { failCreateAt: 3 }));
    await expect(result).rejects.toThrow("injected: create #3");
    expect(tx.record.images).toEqual([a.id]);
    expect(tx.record.layers).toHaveLength(2); // a's and c's top layers (b's and the shared base were there)
    expect(tx.record.tags).toEqual([]);
    expect(await tx.rollback()).toEqual([]);
    await tx.end();
    expect(await snapshot(base)).toEqual(before);
    expect(await base.images.has(b.id)).toBe(true);
  });

  it("a tag failing midway: a moved tag goes back, a new one goes, created images go", async () => {
    const before = await snapshot(base);
    const { tx, result } = await commitThrough(double(base, { failTagAt: 3 }));
    await expect(result).rejects.toThrow("injected: tag #3");
    expect(tx.record.tags).toEqual([{ ref: "docker.io/library/app:1", previous: old.id }, { ref: "docker.io/library/a:1" }]);
    expect(await tx.rollback()).toEqual([]);
    await tx.end();
    expect(await snapshot(base)).toEqual(before);
    expect(await base.references.resolve("app:1")).toBe(old.id);
  });

  it("a createMany that recorded some images before failing: those are rolled back too", async () => {
    const before = await snapshot(base);
    const { tx, result } = await commitThrough(double(base, { partialCreateMany: true }));
    await expect(result).rejects.toThrow("injected: createMany");
    expect(tx.record.images).toEqual([a.id]);
    await tx.rollback();
    await tx.end();
    expect(await snapshot(base)).toEqual(before);
  });

  it("load() through the double: refused, and the store is as before", async () => {
    const before = await snapshot(base);
    const tar = await tarOf(archive());
    await expect(load(double(base, { failCreateAt: 3 }), [tar], { overwriteTags: true })).rejects.toThrow("injected");
    expect(await snapshot(base)).toEqual(before);
    await expect(load(double(base, { failTagAt: 4 }), [tar], { overwriteTags: true })).rejects.toThrow("injected");
    expect(await snapshot(base)).toEqual(before);
    // And without a failure it all lands.
    const r = await load(double(base, {}), [tar], { overwriteTags: true });
    expect(r.images.map((i) => [i.id, i.existed])).toEqual([[a.id, false], [b.id, true], [c.id, false]]);
    expect(await base.references.resolve("app:1")).toBe(a.id as Digest);
  });
});
