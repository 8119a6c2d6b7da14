/**
 * Store-wide views: disk usage as `docker system df` splits it (images, build
 * cache, and what nothing references), and fsck.
 * @module
 */
import { openCacheManager } from "@berth/cache";
import type { Digest } from "@berth/digest";
import type { FsckReport, Store } from "@berth/image-store";
import { collectImages, type ImageRecord } from "./images.js";

/** One row of `docker system df`. */
export interface UsageRow {
  count: number;
  /** Images: the tagged ones; build cache: records in use. */
  active: number;
  /** Bytes of the blobs this kind holds (a blob shared by several images counts once). */
  size: number;
  /** Bytes that would go if every inactive item went. */
  reclaimable: number;
}

/** Disk usage of a store. */
export interface DiskUsage {
  images: UsageRow;
  buildCache: UsageRow;
  /**
   * The cache's snapshots: extracted layer chains (`unpack`, mutable refs'
   * parents) and mutable refs' trees (`active`). Files on disk, not blobs:
   * not part of `total`. Reclaimable: what `cache prune` removes.
   */
  snapshots: UsageRow;
  /** Bytes of blobs no image and no cache record references (garbage GC removes). */
  unreferenced: number;
  /** Bytes of every blob. */
  total: number;
  /** Bytes of every layer as dockerd counts them (the tars' file bytes: dockerd's `LayersSize`). */
  layersSize: number;
  /** Every image (newest first), for a verbose listing. */
  perImage: ImageRecord[];
}

/** Compute {@link DiskUsage}: one pass over images, blobs and cache records. */
export async function diskUsage(store: Store): Promise<DiskUsage> {
  const images = await collectImages(store);
  const tagged = images.filter((i) => i.refs.length > 0);
  const sizes = new Map<Digest, number>();
  let total = 0;
  for await (const b of store.content.list()) {
    total += b.size;
    sizes.set(b.digest, b.size);
  }
  const blobsOf = async (list: readonly ImageRecord[]) => {
    const set = new Set<Digest>();
    for (const info of list) {
      const m = await store.images.manifest(info.id);
      set.add(m.digest);
      set.add(m.manifest.config.digest);
      for (const l of m.manifest.layers) set.add(l.digest);
    }
    return set;
  };
  const sum = (set: Set<Digest>) => [...set].reduce((n, d) => n + (sizes.get(d) ?? 0), 0);
  const imagesBytes = sum(await blobsOf(images));
  const buildCache: UsageRow = { count: 0, active: 0, size: 0, reclaimable: 0 };
  const manager = await openCacheManager(store);
  for (const u of await manager.du()) {
    buildCache.count++;
    buildCache.size += u.size;
    if (u.inUse) buildCache.active++;
    if (!u.inUse && !u.shared) buildCache.reclaimable += u.size;
  }
  const snapshots = await manager.snapshotUsage();
  let layersSize = 0;
  for (const l of await store.layers.list()) layersSize += l.contentSize ?? l.size;
  return {
    images: { count: images.length, active: tagged.length, size: imagesBytes, reclaimable: imagesBytes - sum(await blobsOf(tagged)) },
    buildCache,
    snapshots,
    unreferenced: Math.max(0, total - imagesBytes - buildCache.size),
    total,
    layersSize,
    perImage: images,
  };
}

/** Verify every blob and reference; with `repair`, remove garbage and fix what can be fixed. */
export function fsck(store: Store, opts: { repair?: boolean } = {}): Promise<FsckReport> {
  return store.fsck({ repair: opts.repair === true });
}
