/**
 * The committed snapshot of a layer chain: extracted once, bottom-up, each
 * layer prepared on the snapshot of the chain below it and committed under
 * its ChainID, so every image sharing a chain prefix shares its snapshots.
 * Blobs are read through the store's content provider and applied by
 * {@link applyLayer} as they stream.
 * @module
 */
import { randomBytes } from "node:crypto";
import type { Digest } from "@berth/digest";
import type { ContentProvider, Layer } from "@berth/layer-store";
import { type ApplyOptions, type ApplyResult, applyLayer } from "./apply.js";
import { SnapshotErrorCode } from "../errors.js";
import type { Snapshotter } from "./snapshotter.js";

/** The store roles {@link ensureChainSnapshot} uses. */
export interface ChainSnapshotStore {
  layers: { get(chainID: Digest | string): Promise<Layer> };
  content: Pick<ContentProvider, "open">;
}

/** Options of {@link ensureChainSnapshot}. */
export interface EnsureChainOptions extends Pick<ApplyOptions, "owners" | "recordOwners" | "idMapping" | "specialFiles" | "signal"> {
  /** Told after each layer it extracted. */
  onLayer?(layer: Layer, result: ApplyResult): void;
}

/** What {@link ensureChainSnapshot} found or made. */
export interface ChainSnapshot {
  /** Key of the committed snapshot (the ChainID). */
  key: string;
  /** Its directory (read-only by contract: prepare or view on it). */
  path: string;
  /** ChainIDs of the layers extracted by this call, bottom first (empty when all existed). */
  extracted: Digest[];
}

/** The layers of a chain, bottom first. */
export async function layerChain(store: Pick<ChainSnapshotStore, "layers">, chainID: Digest | string): Promise<Layer[]> {
  const out: Layer[] = [];
  for (let id: string | null = chainID; id; ) {
    const layer: Layer = await store.layers.get(id);
    out.unshift(layer);
    id = layer.parent;
  }
  return out;
}

/**
 * Make sure the committed snapshot keyed by `chainID` exists, extracting
 * the layers whose snapshots are missing, bottom-up. A layer that fails
 * leaves nothing (its prepared snapshot is removed); one extracted by
 * another process meanwhile is used as it is.
 * @throws the errors of {@link applyLayer}; NotFoundError `ERR_LAYER_NOT_FOUND` for a chain not in the store
 */
export async function ensureChainSnapshot(store: ChainSnapshotStore, snapshots: Snapshotter, chainID: Digest | string, opts: EnsureChainOptions = {}): Promise<ChainSnapshot> {
  const have = await snapshots.find(chainID);
  if (have?.kind === "committed") return { key: chainID, path: snapshots.treeOf(have), extracted: [] };
  const chain = await layerChain(store, chainID);
  let start = chain.length;
  while (start > 0 && (await snapshots.find(chain[start - 1]!.chainID))?.kind !== "committed") start--;
  const extracted: Digest[] = [];
  for (let i = start; i < chain.length; i++) {
    opts.signal?.throwIfAborted();
    const layer = chain[i]!;
    const parent = i > 0 ? chain[i - 1]!.chainID : undefined;
    const key = `extract-${layer.chainID}-${randomBytes(4).toString("hex")}`;
    const dir = await snapshots.prepare(key, parent);
    try {
      const result = await applyStoredLayer(store.content, layer, dir, { ...opts, what: `layer ${layer.chainID}` });
      try {
        await snapshots.commit(layer.chainID, key, { labels: { "berth.diffID": layer.diffID } });
        extracted.push(layer.chainID);
      } catch (err) {
        if ((err as { code?: string }).code !== SnapshotErrorCode.SNAPSHOT_EXISTS) throw err;
        await snapshots.remove(key); // committed by someone else meanwhile: theirs is the same tree
      }
      opts.onLayer?.(layer, result);
    } catch (err) {
      await snapshots.remove(key).catch(() => {});
      throw err;
    }
  }
  const top = await snapshots.stat(chainID);
  return { key: chainID, path: snapshots.treeOf(top), extracted };
}

/** The options of {@link applyLayer} that callers pass through (owners, special files, signal). */
function pickApply(opts: Pick<ApplyOptions, "owners" | "recordOwners" | "idMapping" | "specialFiles" | "signal">): ApplyOptions {
  return {
    ...(opts.idMapping ? { idMapping: opts.idMapping } : {}),
    ...(opts.owners !== undefined ? { owners: opts.owners } : {}),
    ...(opts.recordOwners !== undefined ? { recordOwners: opts.recordOwners } : {}),
    ...(opts.specialFiles !== undefined ? { specialFiles: opts.specialFiles } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
}

/**
 * {@link applyLayer} of a layer of the layer store: its blob as stored
 * (tar, gzip or zstd), opened from `content` and closed however the apply
 * ends. Only the options named in {@link pickApply} and `what` are used.
 */
export async function applyStoredLayer(content: Pick<ContentProvider, "open">, layer: Layer, dir: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const blob = await content.open(layer.blob.digest);
  try {
    return await applyLayer(dir, blob, { ...pickApply(opts), what: opts.what ?? `layer ${layer.diffID}` });
  } finally {
    blob.destroy();
  }
}
