import { openCacheManager } from "@berth/cache";
import { createReadStream } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { readTar, type SavePlan } from "@berth/docker-archive";
import { openStore } from "@berth/image-store";
import { describe, expect, it } from "vitest";
import { ImageService } from "../src/index.js";
import { freshService, tarStream } from "./helpers.js";

const big = (n: number) => "x".repeat(n);

describe("save and load", () => {
  it("save to a file: the plan first, the file only when complete, loaded back by path with the parent chain", async () => {
    const { svc, dir } = await freshService();
    const base = await svc.import(tarStream({ a: big(100_000) }), { tags: ["base:1"] });
    const app = await svc.build({ base: "base:1", layers: [tarStream({ b: "2" })], tags: ["app:1"] });
    const file = join(dir, "out.tar");
    let plan: SavePlan | undefined;
    let last = 0;
    const r = await svc.save(["app:1"], file, { withParents: true, onPlan: (p) => (plan = p), onProgress: (p) => (last = p.bytesWritten) });
    expect(plan?.size).toBe(r.size);
    expect(last).toBe(r.size);
    expect((await stat(file)).size).toBe(r.size);
    expect(r.carried).toBe(1);
    expect((await readdir(dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);

    const other = new ImageService(await openStore({ root: join(dir, "other") }));
    try {
      const loaded = await other.load(file);
      expect(loaded.images.map((i) => i.id)).toEqual([app.id]);
      expect(loaded.parentChain?.created).toEqual([base.id]);
      expect(await other.store.images.getParent(app.id)).toBe(base.id);
    } finally {
      await other.close();
    }
  });

  it("openSave streams exactly the planned bytes; load from that stream gives the same image", async () => {
    const { svc, dir } = await freshService();
    const img = await svc.import(tarStream({ a: "1" }), { tags: ["s:1"] });
    const opened = await svc.openSave(["s:1"]);
    // a PassThrough holds chunks after their write callbacks: writeTo must not reuse them
    const out = new PassThrough({ highWaterMark: 64 << 20 });
    const n = await opened.writeTo(out);
    out.end();
    const chunks: Uint8Array[] = [];
    for await (const c of out) chunks.push(c as Buffer);
    expect(n).toBe(opened.plan.size);
    expect(chunks.reduce((n, c) => n + c.length, 0)).toBe(opened.plan.size);
    const other = new ImageService(await openStore({ root: join(dir, "other") }));
    try {
      const loaded = await other.load(
        (async function* () {
          yield* chunks;
        })(),
      );
      expect(loaded.images[0]!.id).toBe(img.id);
      expect(await other.store.references.resolve("s:1")).toBe(img.id);
    } finally {
      await other.close();
    }
  });

  it("an aborted save leaves no file; an aborted load leaves the store as it was", async () => {
    const { svc, store, dir } = await freshService();
    await svc.import(tarStream({ a: big(300_000) }), { tags: ["a:1"] });
    const file = join(dir, "aborted.tar");
    const ac = new AbortController();
    await expect(svc.save(["a:1"], file, { onProgress: () => ac.abort(new Error("stop save")), signal: ac.signal })).rejects.toThrow("stop save");
    expect(await readdir(dir)).not.toContain("aborted.tar");
    expect((await readdir(dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);

    await svc.save(["a:1"], file);
    const other = new ImageService(await openStore({ root: join(dir, "other") }));
    try {
      const ac2 = new AbortController();
      await expect(other.load(file, { signal: ac2.signal, onProgress: () => ac2.abort(new Error("stop load")) })).rejects.toThrow("stop load");
      // aborted before it starts
      await expect(other.load(file, { signal: AbortSignal.abort(new Error("never")) })).rejects.toThrow("never");
      expect(await other.store.images.len()).toBe(0);
      expect((await other.store.fsck()).ok).toBe(true);
    } finally {
      await other.close();
    }
    expect(await store.images.len()).toBe(1);
  });

  it("an archive with byte-identical duplicate members loads the same from a file and a stream, parent chain included (as docker load accepts it)", async () => {
    const { svc, dir } = await freshService();
    const base = await svc.import(tarStream({ a: "1" }), { tags: ["base:1"] });
    const app = await svc.build({ base: "base:1", layers: [tarStream({ b: "2" })], tags: ["app:1"] });
    const saved = join(dir, "saved.tar");
    await svc.save(["app:1"], saved, { withParents: true });
    const bytes = await readFile(saved);
    // each member appended again, byte for byte, before the end-of-archive blocks
    const padded = (e: { dataOffset: number; size: number }) => e.dataOffset + Math.ceil(e.size / 512) * 512;
    const entries = new Map<string, { dataOffset: number; size: number }>();
    for await (const e of readTar([bytes])) entries.set(e.name, { dataOffset: e.dataOffset, size: e.size });
    const end = Math.max(...[...entries.values()].map(padded));
    const again = ["repositories", "oci-layout", "berth-cache/v1/chain.json", `blobs/sha256/${app.id.slice(7)}`].map((name) => {
      const e = entries.get(name)!;
      return bytes.subarray(e.dataOffset - 512, padded(e));
    });
    const dup = join(dir, "dup.tar");
    await writeFile(dup, Buffer.concat([bytes.subarray(0, end), ...again, Buffer.alloc(1024)]));
    for (const source of [dup, createReadStream(dup)]) {
      const other = new ImageService(await openStore({ root: join(dir, `other-${typeof source}`) }));
      try {
        const loaded = await other.load(source);
        expect(loaded.images.map((i) => i.id)).toEqual([app.id]);
        expect(loaded.parentChain?.created).toEqual([base.id]);
        expect(await other.store.references.resolve("app:1")).toBe(app.id);
      } finally {
        await other.close();
      }
    }
  });
});

describe("disk usage", () => {
  it("counts images, tagged ones and what untagged ones would free", async () => {
    const { svc } = await freshService();
    await svc.import(tarStream({ a: big(50_000) }), { tags: ["a:1"] });
    await svc.import(tarStream({ b: big(70_000) }));
    const du = await svc.diskUsage();
    expect(du.images.count).toBe(2);
    expect(du.images.active).toBe(1);
    expect(du.images.reclaimable).toBeGreaterThan(70_000);
    expect(du.images.size).toBeGreaterThan(du.images.reclaimable);
    expect(du.unreferenced).toBe(0);
    expect(du.total).toBe(du.images.size);
    expect(du.snapshots).toEqual({ count: 0, active: 0, size: 0, reclaimable: 0 });
  });

  it("counts the cache's snapshots: a mutable ref's tree is active, the chain it is on stays until a prune removes both", async () => {
    const { svc, store } = await freshService();
    const img = await svc.import(tarStream({ a: big(60_000) }), { tags: ["a:1"] });
    const cm = await openCacheManager(store);
    const ref = await cm.new((await store.images.get(img.id)).config.rootfs.diff_ids[0]!);
    const du = await svc.diskUsage();
    expect(du.snapshots).toMatchObject({ count: 2, active: 1, reclaimable: 0 });
    expect(du.snapshots.size).toBeGreaterThan(100_000);
    expect(du.total).toBe(du.images.size); // files, not blobs
    // released, the ref stays as cache (as BuildKit's); a prune removes it, and its tree; the
    // record of the chain it was on (made by `new`) keeps that chain's tree until `prune -a`
    await ref.release();
    expect((await svc.diskUsage()).snapshots).toMatchObject({ count: 2, active: 1, reclaimable: 0 });
    const pruned = await cm.prune();
    expect(pruned.removed.map((u) => u.mutable)).toEqual([true]);
    expect(pruned.snapshotsRemoved).toEqual([]);
    expect((await svc.diskUsage()).snapshots).toMatchObject({ count: 1, active: 0, reclaimable: 0 });
    expect((await cm.prune({ all: true })).snapshotsRemoved).toHaveLength(1);
    expect((await svc.diskUsage()).snapshots).toEqual({ count: 0, active: 0, size: 0, reclaimable: 0 });
  });
});
