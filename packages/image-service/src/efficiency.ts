/**
 * Wasted space and the efficiency score, computed as dive computes them
 * (`dive/filetree/efficiency.go` and `dive/image/image.go`'s `Analyze`):
 *
 * - In each layer, every *leaf* path (an entry with nothing below it in that
 *   layer; whiteouts are leaves) is one occurrence of that path. Its size is
 *   the entry's size; for a whiteout, 0 when it removes a file and the bytes
 *   of the whole removed subtree when it removes a directory.
 * - Per path: `cumulative` = the sum of its occurrences' sizes, `minimum` =
 *   the smallest of them.
 * - **efficiency** = Σ minimum / Σ cumulative over all paths (1 when both are 0).
 * - **wasted bytes** = Σ cumulative over the paths with two occurrences or
 *   more — every copy, the surviving one included.
 * - **user wasted percent** = wasted bytes / the bytes of every layer but the first.
 *
 * Two things dive does not have: an opaque-directory marker counts as a
 * whiteout of that directory (dive's rule for a removed directory; dive
 * itself stops reading the layer there), and each path also gets berth's
 * `reclaimableBytes`: the bytes of its copies nobody can see in the final
 * image (cumulative − the final copy's size, or all of it when removed); the
 * image's `reclaimableBytes` is every layer's bytes less the final image's,
 * which also counts what dive leaves out (files under a removed directory).
 * @module
 */
import type { MarkedEntry } from "./stack.js";

/** One occurrence of a path in a layer. */
export interface PathOccurrence {
  /** Layer index, bottom first. */
  layer: number;
  /** Its size as counted (see the module doc for whiteouts). */
  size: number;
  /** A whiteout or opaque marker. */
  removed: boolean;
}

/** A path that occurs in more than one layer: dive's "inefficiency". */
export interface WastedPath {
  path: string;
  occurrences: PathOccurrence[];
  /** Sum of the occurrences' sizes (dive's `CumulativeSize`). */
  cumulativeSize: number;
  /** Bytes of copies nobody sees in the final image (berth's figure). */
  reclaimableBytes: number;
}

/** dive's numbers for an image. */
export interface EfficiencyReport {
  /** Σ minimum / Σ cumulative, 0…1. */
  efficiency: number;
  /** Σ cumulative of the paths that occur more than once. */
  wastedBytes: number;
  /** Bytes in the layers that the final image does not show (berth's figure: what removing the waste would save). */
  reclaimableBytes: number;
  /** Sum of every layer's file bytes. */
  sizeBytes: number;
  /** Sum of the file bytes of every layer but the first. */
  userSizeBytes: number;
  /** wastedBytes / userSizeBytes; null when there are no user bytes but there is waste (dive: +Inf). */
  userWastedPercent: number | null;
  /** The wasted paths, largest cumulative size first. */
  files: WastedPath[];
}

/** Index of the entries that have something below them in the same layer (explicitly or through a deeper path). */
function parentsOf(entries: readonly MarkedEntry[]): Set<string> {
  const parents = new Set<string>();
  for (const e of entries) {
    for (let i = e.path.lastIndexOf("/"); i > 0; i = e.path.lastIndexOf("/", i - 1)) {
      const p = e.path.slice(0, i);
      if (parents.has(p)) break;
      parents.add(p);
    }
  }
  return parents;
}

/**
 * dive's efficiency and wasted space of layers marked by `stackLayers`
 * (bottom first); `visibleBytes` is the file bytes of the final image.
 */
export function computeEfficiency(layers: readonly (readonly MarkedEntry[])[], visibleBytes: number): EfficiencyReport {
  const byPath = new Map<string, { occurrences: PathOccurrence[]; cumulative: number; minimum: number }>();
  let sizeBytes = 0;
  let userSizeBytes = 0;
  layers.forEach((entries, layer) => {
    const parents = parentsOf(entries);
    for (const e of entries) {
      sizeBytes += e.size;
      if (layer > 0) userSizeBytes += e.size;
      const removed = e.type === "whiteout" || e.type === "opaque";
      // an opaque marker sits on a directory that has its own entries: it still counts once, as a removal
      if (!removed && parents.has(e.path)) continue;
      const size = removed ? (e.type === "opaque" || e.removedDir ? (e.removedBytes ?? 0) : 0) : e.size;
      const d = byPath.get(e.path) ?? { occurrences: [], cumulative: 0, minimum: size };
      d.occurrences.push({ layer, size, removed });
      d.cumulative += size;
      d.minimum = Math.min(d.minimum, size);
      byPath.set(e.path, d);
    }
  });
  let minimum = 0;
  let discovered = 0;
  let wastedBytes = 0;
  const files: WastedPath[] = [];
  for (const [path, d] of byPath) {
    minimum += d.minimum;
    discovered += d.cumulative;
    if (d.occurrences.length < 2) continue;
    const last = d.occurrences[d.occurrences.length - 1]!;
    const reclaimable = d.cumulative - (last.removed ? 0 : last.size);
    wastedBytes += d.cumulative;
    files.push({ path, occurrences: d.occurrences, cumulativeSize: d.cumulative, reclaimableBytes: reclaimable });
  }
  files.sort((a, b) => b.cumulativeSize - a.cumulativeSize || a.path.localeCompare(b.path));
  return {
    efficiency: discovered === 0 ? 1 : minimum / discovered,
    wastedBytes,
    reclaimableBytes: sizeBytes - visibleBytes,
    sizeBytes,
    userSizeBytes,
    userWastedPercent: userSizeBytes > 0 ? wastedBytes / userSizeBytes : wastedBytes === 0 ? 0 : null,
    files,
  };
}
