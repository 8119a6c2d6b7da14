/**
 * Chain snapshots as disk usage: what a summary counts and calls
 * reclaimable, what a prune removes (leaves first; what a record holds, an
 * active snapshot is prepared on, or a view shares stays), and the cache
 * manager's prune removing the trees of chains no record holds.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store } from "@berth/image-store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tarOf } from "../../test/snapshot-util.js";
import { openCacheManager } from "../records.js";
import { ensureChainSnapshot } from "./chain.js";
import { pruneChainSnapshots, summarizeSnapshots } from "./prune.js";
import { openSnapshotter, type Snapshotter } from "./snapshotter.js";

let root: string;
let store: Store;
let snaps: Snapshotter;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-snap-prune-"));
  store = await openStore({ root });
  snaps = await openSnapshotter({ root });
});
afterEach(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

/** A chain of two layers, extracted: snapshots `c1` (bottom) and `c2`. */
async function chain(): Promise<{ c1: string; c2: string }> {
  const l1 = await store.layers.register([await tarOf([{ name: "a", body: "x".repeat(20_000) }])]);
  const l2 = await store.layers.register([await tarOf([{ name: "b", body: "y".repeat(30_000) }])], l1.chainID);
  await ensureChainSnapshot(store, snaps, l2.chainID);
  return { c1: l1.chainID, c2: l2.chainID };
}

describe("chain snapshots as disk usage", () => {
  it("counts every snapshot; what nothing needs is reclaimable and goes, leaves first", async () => {
    const { c1, c2 } = await chain();
    const all = await summarizeSnapshots(snaps, new Set());
    expect(all).toMatchObject({ count: 2, active: 0 });
    expect(all.size).toBeGreaterThan(50_000);
    expect(all.reclaimable).toBe(all.size);
    // a record on the bottom chain keeps it; the top is still reclaimable
    const keptBottom = await summarizeSnapshots(snaps, new Set([c1]));
    expect(keptBottom.reclaimable).toBeGreaterThan(0);
    expect(keptBottom.reclaimable).toBeLessThan(all.size);
    // a record on the top keeps both (the bottom is its ancestor)
    expect((await summarizeSnapshots(snaps, new Set([c2]))).reclaimable).toBe(0);
    expect((await pruneChainSnapshots(snaps, new Set([c2]))).removed).toEqual([]);
    const r = await pruneChainSnapshots(snaps, new Set([c1]));
    expect(r.removed).toEqual([c2]);
    expect((await snaps.walk()).map((s) => s.key)).toEqual([c1]);
    expect((await pruneChainSnapshots(snaps, new Set())).removed).toEqual([c1]);
    expect(await snaps.walk()).toEqual([]);
  });

  it("an active snapshot prepared on the top, or a view of it, keeps the chain", async () => {
    const { c2 } = await chain();
    const dir = await snaps.prepare("work", c2);
    await writeFile(join(dir, "new"), "n".repeat(10_000));
    const s = await summarizeSnapshots(snaps, new Set());
    expect(s).toMatchObject({ count: 3, active: 1, reclaimable: 0 });
    expect((await pruneChainSnapshots(snaps, new Set())).removed).toEqual([]);
    await snaps.remove("work");
    await snaps.view("look", c2);
    expect((await pruneChainSnapshots(snaps, new Set())).removed).toEqual([]);
    await snaps.remove("look");
    expect((await pruneChainSnapshots(snaps, new Set())).removed).toHaveLength(2);
  });

  it("the cache manager's prune removes the trees of chains no record holds; du-style usage from the manager", async () => {
    const { c1, c2 } = await chain();
    const cm = await openCacheManager(store);
    const ref = await cm.getByLayer(c1, { description: "bottom" });
    await ref.release();
    expect((await cm.snapshotUsage()).count).toBe(2);
    const filtered = await cm.prune({ filters: ["description=nothing"] });
    expect(filtered.snapshotsRemoved).toEqual([]);
    const plain = await cm.prune({ all: true });
    expect(plain.snapshotsRemoved.sort()).toEqual([c1, c2].sort());
    expect(plain.freedBytes).toBeGreaterThan(50_000);
    expect(await cm.snapshotUsage()).toEqual({ count: 0, active: 0, size: 0, reclaimable: 0 });
  });
});
