/**
 * Layer helpers shared by the filesystem and the in-memory layer store. No
 * file system here: `memory.ts` imports this module.
 * @module
 */
import { type ByteSource, type Digest, InvalidArgumentError } from "@berth/digest";
import { layerMediaType } from "@berth/oci";
import { checkSize } from "./content-common.js";
import { checkDigest } from "./paths.js";
import type { Layer, LayerBlobFacts, LayerStore, RegisterOptions } from "./types.js";

/** A copy of a layer (callers may not change the store's own objects). @internal */
export function copyLayer(l: Layer): Layer {
  const c: Layer = { chainID: l.chainID, diffID: l.diffID, parent: l.parent, size: l.size, blob: { ...l.blob } };
  if (l.contentSize !== undefined) c.contentSize = l.contentSize;
  return c;
}

/** Facts checked before a layer is recorded from them (typed errors on malformed ones). @internal */
export function checkFacts(facts: LayerBlobFacts): LayerBlobFacts {
  if (!facts || typeof facts !== "object" || !facts.blob) throw new InvalidArgumentError("recordLayer: facts must be what ingestLayer returned");
  return {
    blob: { mediaType: layerMediaType(facts.compression, facts.blob.mediaType || undefined), digest: checkDigest(facts.blob.digest, "blob digest"), size: checkSize(facts.blob.size) },
    compression: facts.compression,
    diffID: checkDigest(facts.diffID, "DiffID"),
    uncompressedSize: checkSize(facts.uncompressedSize, "uncompressed size"),
    contentSize: checkSize(facts.contentSize, "contentSize"),
  };
}

/** The record of a new layer. @internal */
export function layerFromFacts(chainID: Digest, parent: Digest | null, f: LayerBlobFacts): Layer {
  return { chainID, diffID: f.diffID, parent, size: f.uncompressedSize, contentSize: f.contentSize, blob: { ...f.blob } };
}

/**
 * `register`'s two phases once its checks passed: ingest `input`, then record
 * the layer on `parentID`, under the caller's lease or one of the store's own
 * (the blob is protected from a concurrent GC between the phases).
 */
export async function ingestAndRecord(
  store: LayerStore,
  input: ByteSource,
  parentID: Digest | null,
  opts: RegisterOptions,
): Promise<Layer & { existed: boolean }> {
  const lease = opts.lease ?? (await store.lease());
  try {
    const facts = await store.ingestLayer(input, { ...opts, lease });
    return await store.recordLayer(facts, parentID, { lease, ...(opts.holder !== undefined ? { holder: opts.holder } : {}) });
  } finally {
    if (!opts.lease) await lease.release();
  }
}
