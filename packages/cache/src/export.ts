/**
 * Cache export (after BuildKit's `cache/remotecache/v1` `CacheChains.Marshal`
 * and the exporter's image-manifest form): turn cache records — keys a build
 * tool computed, the keys each was computed from, and the layer chain in the
 * store each resolves to — into BuildKit's cache config
 * (`application/vnd.buildkit.cacheconfig.v0`: `layers` with parent indexes
 * and annotations, `records` with `inputs` links and `layers` results) and
 * the OCI image manifest that carries it as its config, the layer blobs as
 * stored as its layers (`containerd.io/uncompressed` and `buildkit/createdat`
 * annotations). {@link importCache} reads it back; so does BuildKit
 * (`--cache-from type=registry` / `type=local`).
 *
 * Where the records come from is the caller's: a build tool's own keys, or
 * another cache relayed (`CacheImport.inputs` gives what a key links to).
 * Writing the result to a registry or an OCI layout is `@berth/image-service`'s
 * `exportCache`, which copies it like an image.
 * @module
 */
import { type Digest, InvalidArgumentError, isSha256Digest, sha256 } from "@berth/digest";
import type { Layer, LayerStore } from "@berth/layer-store";
import { MEDIA_TYPE_OCI_MANIFEST } from "@berth/oci";
import { CacheErrorCode } from "./errors.js";
import { ANNOTATION_UNCOMPRESSED, CACHE_CONFIG_MEDIA_TYPE, type CacheInput } from "./import.js";

/** One cache key to export. */
export interface ExportRecord {
  /** The cache key (BuildKit's record digest). */
  key: Digest;
  /**
   * What the key was computed from: one list per input of the step, each
   * listing the keys that input may have come from. Every linked key must be
   * a record of the same export.
   */
  inputs?: ReadonlyArray<ReadonlyArray<CacheInput>>;
  /** The key's result: a layer chain of the store (ChainID). None for a key kept only for its links. */
  chainID?: Digest;
  /** When the result was made (RFC 3339). Default: now. */
  createdAt?: string;
}

/** A descriptor of the exported manifest. */
export interface ExportDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
}

/** What {@link planCacheExport} made: the documents, and the blobs they name. */
export interface CacheExportPlan {
  /** The image-manifest form: an OCI manifest whose config is the cache config. */
  manifest: { bytes: Uint8Array; digest: Digest; mediaType: string; size: number };
  /** The cache config (`application/vnd.buildkit.cacheconfig.v0`). */
  config: { bytes: Uint8Array; digest: Digest; size: number };
  /** The layer blobs, as the manifest lists them (each once, bottom layers first). */
  layers: ExportDescriptor[];
  /** Records written (keys given twice are merged) and those with a result. */
  records: number;
  results: number;
}

function badRecord(message: string): InvalidArgumentError {
  return new InvalidArgumentError(`cache export: ${message}`, { code: CacheErrorCode.INVALID_CACHE_RECORD });
}

/**
 * Build the cache config and manifest of `records` over the layers of
 * `store` (read: each record's chain, bottom to top). Deterministic for the
 * same records and times.
 * @throws InvalidArgumentError `ERR_INVALID_CACHE_RECORD` (a key that is not a
 *   sha256 digest, an input linking to a key not exported); the layer store's
 *   `ERR_LAYER_NOT_FOUND` for a chain it does not hold
 */
export async function planCacheExport(store: { layers: Pick<LayerStore, "get"> }, records: readonly ExportRecord[], opts: { now?: Date } = {}): Promise<CacheExportPlan> {
  const now = (opts.now ?? new Date()).toISOString();
  // records by key, in first-seen order; a key given twice keeps every result and input
  const byKey = new Map<Digest, { inputs: CacheInput[][]; results: Array<{ chainID: Digest; createdAt: string }> }>();
  for (const r of records) {
    if (!isSha256Digest(r.key)) throw badRecord(`key ${JSON.stringify(r.key)} is not a sha256 digest`);
    const rec = byKey.get(r.key) ?? { inputs: [], results: [] };
    byKey.set(r.key, rec);
    for (const [i, group] of (r.inputs ?? []).entries()) {
      if (group.length === 0) throw badRecord(`record ${r.key}: input ${i} lists no key`);
      rec.inputs[i] = [...(rec.inputs[i] ?? []), ...group];
    }
    if (r.chainID) rec.results.push({ chainID: r.chainID, createdAt: r.createdAt ?? now });
  }
  const keyIndex = new Map([...byKey.keys()].map((k, i) => [k, i]));

  // layers: one entry per layer of each chain (a blob on another parent is another entry, as BuildKit's)
  const layerIndex = new Map<Digest, number>();
  const layers: Array<{ layer: Layer; parent: number; createdAt: string }> = [];
  const addChain = async (chainID: Digest, createdAt: string): Promise<number> => {
    const known = layerIndex.get(chainID);
    if (known !== undefined) return known;
    const layer = await store.layers.get(chainID);
    const parent = layer.parent ? await addChain(layer.parent, createdAt) : -1;
    layers.push({ layer, parent, createdAt });
    layerIndex.set(chainID, layers.length - 1);
    return layers.length - 1;
  };

  const outRecords: Array<Record<string, unknown>> = [];
  let results = 0;
  for (const [key, rec] of byKey) {
    const out: Record<string, unknown> = { digest: key };
    const res: Array<{ layer: number; createdAt: string }> = [];
    for (const r of rec.results) res.push({ layer: await addChain(r.chainID, r.createdAt), createdAt: r.createdAt });
    if (res.length > 0) {
      out.layers = res;
      results++;
    }
    if (rec.inputs.length > 0) {
      out.inputs = rec.inputs.map((group, i) =>
        group.map((inp) => {
          const link = keyIndex.get(inp.key);
          if (link === undefined) throw badRecord(`record ${key}: input ${i} links to ${inp.key}, which is not exported`);
          return { ...(inp.selector ? { selector: inp.selector } : {}), link };
        }),
      );
    }
    outRecords.push(out);
  }

  const blobs = new Map<Digest, ExportDescriptor>();
  const configLayers = layers.map(({ layer, parent, createdAt }) => {
    if (!blobs.has(layer.blob.digest)) {
      blobs.set(layer.blob.digest, {
        mediaType: layer.blob.mediaType,
        digest: layer.blob.digest,
        size: layer.blob.size,
        annotations: { [ANNOTATION_UNCOMPRESSED]: layer.diffID, "buildkit/createdat": createdAt },
      });
    }
    return {
      blob: layer.blob.digest,
      parent,
      annotations: { mediaType: layer.blob.mediaType, diffID: layer.diffID, size: layer.blob.size, createdAt },
    };
  });
  const configBytes = new TextEncoder().encode(JSON.stringify({ layers: configLayers, records: outRecords }));
  const config = { bytes: configBytes, digest: sha256(configBytes), size: configBytes.length };
  const manifestLayers = [...blobs.values()];
  const manifestDoc = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: config.digest, size: config.size },
    layers: manifestLayers,
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifestDoc));
  return {
    manifest: { bytes: manifestBytes, digest: sha256(manifestBytes), mediaType: MEDIA_TYPE_OCI_MANIFEST, size: manifestBytes.length },
    config,
    layers: manifestLayers,
    records: outRecords.length,
    results,
  };
}
