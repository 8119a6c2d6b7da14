import type { Digest } from "@berth/digest";
import { openStore, type Store } from "@berth/image-store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ClassicCacheStore, createCache } from "../src/classic.js";
import { makeTarGz, tempDir } from "./helpers.js";

let store: Store;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  const t = await tempDir();
  cleanup = t.cleanup;
  store = await openStore({ root: t.dir });
});
afterEach(async () => {
  await store.close();
  await cleanup();
});

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const probe = { Cmd: ["/bin/sh", "-c", "#(nop) ", "ENV A=1"], Env: ["A=1"] };

describe("LocalImageCache over an image store", () => {
  it("children built locally, platform accepted, same config; newest created wins", async () => {
    const l = await store.layers.register([await makeTarGz({ a: "1" })]);
    const rootfs = { type: "layers", diff_ids: [l.diffID] };
    const parent = await store.images.create(enc({ architecture: "amd64", os: "linux", rootfs, history: [{ created_by: "base" }] }));
    const child = async (extra: object, created: string, local = true) => {
      const img = await store.images.create(
        enc({ architecture: "amd64", os: "linux", rootfs, created, container_config: probe, history: [{ created_by: "base" }, { created_by: "ENV", empty_layer: true }], ...extra }),
      );
      await store.images.setParent(img.id, parent.id);
      if (local) await store.images.setBuiltLocally(img.id);
      return img.id;
    };
    const older = await child({}, "2024-01-01T00:00:00.000000001Z");
    const newer = await child({}, "2024-01-01T00:00:00.000000002Z");
    await child({ comment: "not local" }, "2025-01-01T00:00:00Z", false);
    await child({ architecture: "", os: "" }, "2025-01-02T00:00:00Z"); // old image without a platform
    await child({ architecture: "arm64" }, "2025-01-03T00:00:00Z");
    await child({ container_config: { ...probe, Env: ["A=2"] } }, "2025-01-04T00:00:00Z");
    const cache = await createCache(store);
    const got = await cache.getCache(parent.id, probe, { os: "linux", architecture: "amd64" });
    expect(got).toBe(newer);
    expect(await cache.getCache(parent.id, probe, { os: "linux", architecture: "arm64" })).toBeDefined();
    expect(await cache.getCache(parent.id, null, { os: "linux", architecture: "amd64" })).toBeUndefined();
    expect(older).not.toBe(newer);
    // FROM scratch: images without a parent.
    const scratch = await store.images.create(enc({ architecture: "amd64", os: "linux", rootfs, created: "2024-01-01T00:00:00Z", container_config: { Cmd: ["/bin/sh", "-c", "#(nop) ADD x"] } }));
    await store.images.setBuiltLocally(scratch.id);
    expect(await cache.getCache("", { Cmd: ["/bin/sh", "-c", "#(nop) ADD x"] }, { os: "linux", architecture: "amd64" })).toBe(scratch.id);
    await expect(cache.getCache(`sha256:${"1".repeat(64)}`, probe)).rejects.toMatchObject({ code: "ERR_CACHE_PARENT_NOT_FOUND" });
  });
});

describe("explain mode", () => {
  it("names the rule that decided each candidate, for the local cache and for --cache-from", async () => {
    const l = await store.layers.register([await makeTarGz({ a: "1" })]);
    const rootfs = { type: "layers", diff_ids: [l.diffID] };
    const history = [{ created_by: "base" }];
    const parent = await store.images.create(enc({ architecture: "amd64", os: "linux", rootfs, history }));
    const child = async (extra: object, created: string | undefined, local = true) => {
      const img = await store.images.create(
        enc({ architecture: "amd64", os: "linux", rootfs, created, container_config: probe, history: [...history, { created_by: "ENV", empty_layer: true }], ...extra }),
      );
      await store.images.setParent(img.id, parent.id);
      if (local) await store.images.setBuiltLocally(img.id);
      return img.id;
    };
    const older = await child({}, "2024-01-01T00:00:00Z");
    const newer = await child({}, "2024-01-02T00:00:00Z");
    const pulled = await child({ comment: "pulled" }, "2025-01-01T00:00:00Z", false);
    const noPlatform = await child({ architecture: "", os: "" }, "2025-01-02T00:00:00Z");
    const arm = await child({ architecture: "arm64", variant: "v8" }, "2025-01-03T00:00:00Z");
    const otherEnv = await child({ container_config: { ...probe, Env: ["A=2"] } }, "2025-01-04T00:00:00Z");
    const label = await child({ container_config: { ...probe, Labels: { version: "2" } } }, "2025-01-05T00:00:00Z");
    const undated = await child({ comment: "no created" }, undefined);
    const cache = await createCache(store);
    const seen = new Map<string, { verdict: string; detail?: string }>();
    const got = await cache.getCache(parent.id, probe, { os: "linux", architecture: "amd64" }, { explain: (c) => seen.set(c.image, c) });
    expect(got).toBe(newer);
    expect(Object.fromEntries(seen)).toEqual({
      [newer]: { image: newer, verdict: "hit" },
      [older]: { image: older, verdict: "older" },
      [pulled]: { image: pulled, verdict: "not-built-locally" },
      [noPlatform]: { image: noPlatform, verdict: "no-platform" },
      [arm]: { image: arm, verdict: "platform", detail: "linux/arm64/v8" },
      [otherEnv]: { image: otherEnv, verdict: "config", detail: "Env" },
      [label]: { image: label, verdict: "config", detail: "Labels" },
      [undated]: { image: undated, verdict: "no-created" },
    });
    // a miss with nothing built on the parent: no call at all
    const calls: unknown[] = [];
    expect(await cache.getCache(newer, probe, undefined, { explain: (c) => calls.push(c) })).toBeUndefined();
    expect(calls).toEqual([]);

    // --cache-from: a source whose next step is another command, one whose history does not continue the parent's
    const source = await store.images.create(
      enc({ architecture: "amd64", os: "linux", rootfs, created: "2024-01-01T00:00:00Z", history: [...history, { created_by: "RUN make", empty_layer: true }] }),
    );
    const stranger = await store.images.create(enc({ architecture: "amd64", os: "linux", rootfs, history: [{ created_by: "other base" }, { created_by: "x", empty_layer: true }] }));
    const from = await createCache(store, { cacheFrom: [source.id, stranger.id] });
    const verdicts: Array<[string, string, string | undefined]> = [];
    expect(await from.getCache(parent.id, probe, { os: "linux", architecture: "amd64" }, { explain: (c) => verdicts.push([c.image, c.verdict, c.detail]) })).toBeUndefined();
    expect(verdicts).toContainEqual([newer, "not-from-source", undefined]);
    expect(verdicts).toContainEqual([source.id, "history-entry", "RUN make"]);
    expect(verdicts).toContainEqual([stranger.id, "history", undefined]);
  });
});

describe("FROM scratch lookups", () => {
  /** The store's image roles, counting the configs read (`get`, and every image for `map`). */
  function counting(s: Store, withParentless: boolean): { store: ClassicCacheStore; reads: Digest[]; maps: number } {
    const out = { reads: [] as Digest[], maps: 0, store: undefined as unknown as ClassicCacheStore };
    const images: ClassicCacheStore["images"] = {
      get: async (id) => {
        const img = await s.images.get(id);
        out.reads.push(img.id);
        return img;
      },
      map: async () => {
        out.maps++;
        const m = await s.images.map();
        out.reads.push(...m.keys());
        return m;
      },
      children: (id) => s.images.children(id),
      isBuiltLocally: (id) => s.images.isBuiltLocally(id),
      getParent: (id) => s.images.getParent(id),
      setParent: (id, parent) => s.images.setParent(id, parent),
      create: (bytes) => s.images.create(bytes),
    };
    if (withParentless) images.parentless = () => s.images.parentless();
    out.store = { images };
    return out;
  }

  it("read only the configs of images without a parent, and find the same image as the full scan", async () => {
    const l = await store.layers.register([await makeTarGz({ a: "1" })]);
    const rootfs = { type: "layers", diff_ids: [l.diffID] };
    const add = { Cmd: ["/bin/sh", "-c", "#(nop) ADD x"] };
    const image = async (v: object, parent?: Digest) => {
      const img = await store.images.create(enc({ architecture: "amd64", os: "linux", rootfs, ...v }));
      if (parent) await store.images.setParent(img.id, parent);
      await store.images.setBuiltLocally(img.id);
      return img.id;
    };
    const base = await image({ created: "2024-01-01T00:00:00Z", container_config: add });
    const newer = await image({ created: "2024-02-01T00:00:00Z", container_config: add });
    await image({ created: "2024-03-01T00:00:00Z", container_config: { Cmd: ["other"] } });
    const children: Digest[] = [];
    for (let i = 0; i < 10; i++) {
      children.push(await image({ created: "2025-01-01T00:00:00Z", container_config: add, comment: `child ${i}` }, i % 2 ? base : newer));
    }
    const platform = { os: "linux", architecture: "amd64" };

    const full = counting(store, false);
    const before = await (await createCache(full.store)).getCache("", add, platform);
    expect(before).toBe(newer);
    expect(full.maps).toBe(1);
    for (const c of children) expect(full.reads).toContain(c);

    const indexed = counting(store, true);
    const got = await (await createCache(indexed.store)).getCache("", add, platform);
    expect(got).toBe(before);
    expect(indexed.maps).toBe(0);
    expect(indexed.reads.length).toBe(3); // the three images without a parent, once each
    for (const c of children) expect(indexed.reads).not.toContain(c);

    // A berth store itself takes the indexed path.
    expect(await (await createCache(store)).getCache("", add, platform)).toBe(newer);
  });
});
