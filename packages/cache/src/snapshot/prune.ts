/**
 * Chain snapshots as disk usage: the committed snapshots `ensureChainSnapshot`
 * extracts (keyed by ChainID, each prepared on the one below) are a cache of
 * layer trees — every one can be extracted again from the layer store. What a
 * prune may remove is every committed snapshot that no kept ChainID (the
 * cache records' chains) and no active snapshot or view (a mutable ref's
 * tree, a view) needs, itself or as an ancestor; removed leaves first.
 * @module
 */
import { hasCode, isSha256Digest } from "@berth/digest";
import { SnapshotErrorCode } from "../errors.js";
import type { SnapshotInfo, Snapshotter } from "./snapshotter.js";

/** Chain snapshots in numbers (`docker system df`'s row for them). */
export interface SnapshotSummary {
  /** Every snapshot: committed, active and views. */
  count: number;
  /** Active snapshots and views (trees in use). */
  active: number;
  /** Bytes on disk (blocks; hard-linked inodes once per snapshot). */
  size: number;
  /** Bytes of the committed snapshots a prune would remove. */
  reclaimable: number;
}

/** Keys of committed chain snapshots nothing needs (see the module doc), deepest first. */
function removable(all: readonly SnapshotInfo[], keep: ReadonlySet<string>): SnapshotInfo[] {
  const byKey = new Map(all.map((s) => [s.key, s]));
  const needed = new Set<string>();
  const need = (key: string | undefined) => {
    for (let k = key; k !== undefined && !needed.has(k); k = byKey.get(k)?.parent) needed.add(k);
  };
  for (const s of all) if (s.kind !== "committed" || keep.has(s.key) || !isSha256Digest(s.key)) need(s.key);
  const depth = (s: SnapshotInfo) => {
    let d = 0;
    for (let p = s.parent; p !== undefined && d < 10_000; p = byKey.get(p)?.parent) d++;
    return d;
  };
  return all.filter((s) => !needed.has(s.key)).sort((a, b) => depth(b) - depth(a));
}

/** Size of a snapshot's tree, 0 when it cannot be measured (removed meanwhile). */
async function sizeOf(snaps: Snapshotter, key: string): Promise<number> {
  return (await snaps.usage(key).catch(() => undefined))?.size ?? 0;
}

/** {@link SnapshotSummary} of a snapshotter, `keep` being the ChainIDs cache records hold. */
export async function summarizeSnapshots(snaps: Snapshotter, keep: ReadonlySet<string>): Promise<SnapshotSummary> {
  const all = await snaps.walk();
  const out: SnapshotSummary = { count: all.length, active: 0, size: 0, reclaimable: 0 };
  const measured = new Set<string>();
  for (const s of all) {
    if (s.kind !== "committed") out.active++;
    // a view shares its parent's tree: counted once
    if (measured.has(s.id)) continue;
    measured.add(s.id);
    out.size += await sizeOf(snaps, s.key);
  }
  for (const s of removable(all, keep)) out.reclaimable += await sizeOf(snaps, s.key);
  return out;
}

/**
 * Remove the committed chain snapshots nothing needs (see the module doc).
 * One another process prepared on meanwhile stays. Resolves with the keys
 * removed and the bytes they used.
 */
export async function pruneChainSnapshots(snaps: Snapshotter, keep: ReadonlySet<string>): Promise<{ removed: string[]; freedBytes: number }> {
  const removed: string[] = [];
  let freedBytes = 0;
  for (const s of removable(await snaps.walk(), keep)) {
    const size = await sizeOf(snaps, s.key);
    try {
      await snaps.remove(s.key);
    } catch (err) {
      if (hasCode(err, SnapshotErrorCode.SNAPSHOT_HAS_CHILDREN) || hasCode(err, SnapshotErrorCode.SNAPSHOT_NOT_FOUND)) continue;
      throw err;
    }
    removed.push(s.key);
    freedBytes += size;
  }
  return { removed, freedBytes };
}
