/**
 * Copying an image between two ends (registry ↔ registry, registry ↔ OCI
 * layout, layout ↔ layout): the blobs of every manifest (bounded parallel, 4
 * by default; each blob once however many manifests share it), then each
 * manifest, then the index, byte for byte — digests never change. An index
 * is copied whole by default; with `platform`, only the best manifest for it
 * is copied (and becomes the root). Blobs are streamed from source to
 * destination and verified there; nothing is held in memory but configs and
 * manifests.
 *
 * With a blob-info cache, every blob seen is recorded as known in the source
 * and destination repositories, mount candidates come from it, and the
 * DiffID of each layer (from the image config) is recorded against its
 * compressed digest.
 * @module
 */
import { type Digest, hasCode, parseDigest } from "@berth/digest";
import {
  type Descriptor,
  IMAGE_CONFIG_MEDIA_TYPES,
  INDEX_MEDIA_TYPES,
  layerCompression,
  MEDIA_TYPE_DOCKER_LAYER_FOREIGN,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP,
  type OciManifest,
  type PlatformSpec,
  parseImageConfig,
  parseIndex,
  parseManifest,
} from "@berth/oci";
import pLimit from "p-limit";
import type { BlobInfoCache } from "./blobinfocache.js";
import type { ImageDestination, ImageSource, PutBlobResult } from "./endpoints.js";
import { abortedError, type DistributionError, REGISTRY_ERROR_CODES } from "./errors.js";
import { selectManifest } from "./platform.js";
import type { BlobDescriptor } from "./verify.js";
import { verifyBytes } from "./verify.js";

/** Progress of a copy. */
export type CopyEvent =
  | { type: "blob-start"; digest: Digest; size: number; mediaType: string }
  | { type: "blob-progress"; digest: Digest; size: number; bytes: number }
  | ({ type: "blob-done"; digest: Digest; size: number; mediaType: string } & PutBlobResult)
  | { type: "manifest"; digest: Digest; mediaType: string; status: "exists" | "written"; tag?: string };

/** Options of {@link copyImage}. */
export interface CopyOptions {
  /** Tag (or layout ref name) to give the root at the destination. */
  tag?: string;
  /** Copy only this platform's manifest out of an index. Default: the whole index. */
  platform?: PlatformSpec;
  /** Blobs in flight at once. Default 4. */
  concurrency?: number;
  /** Mount candidates and DiffID mappings (read and recorded; the caller flushes it). */
  blobInfoCache?: BlobInfoCache;
  /**
   * Read each image config whole to record its layers' DiffIDs in the
   * blob-info cache. Default true; a caller that knows them (a push from a
   * store) passes false, and the config streams like any blob.
   */
  learnDiffIds?: boolean;
  /** Configs larger than this are not read for DiffIDs (they are still copied). Default 16 MiB. */
  maxConfigSize?: number;
  signal?: AbortSignal;
  onProgress?(event: CopyEvent): void;
}

/** What a copy did. */
export interface CopyResult {
  /** The root written at the destination (the index, or the selected manifest). */
  digest: Digest;
  mediaType: string;
  size: number;
  /** With `platform`: the descriptor chosen from the index. */
  selected?: Descriptor;
  /** Every blob, once, with what happened to it. */
  blobs: (PutBlobResult & { digest: Digest; size: number })[];
  /** Manifests and indexes written (not already there). */
  manifestsWritten: number;
  /** Blob bytes read from the source (configs read for their DiffIDs included). */
  bytesTransferred: number;
}

const FOREIGN = new Set([MEDIA_TYPE_DOCKER_LAYER_FOREIGN, MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE, MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP]);

/** A layer that lives elsewhere (Windows base layers with `urls`): not copied, as docker and skopeo do. */
function isForeign(d: Descriptor): boolean {
  return (d.urls?.length ?? 0) > 0 && FOREIGN.has(d.mediaType);
}

/** The registry refused a manifest because a blob it names is not there (`MANIFEST_BLOB_UNKNOWN`). */
function blobLostMeanwhile(err: unknown): boolean {
  if (!hasCode(err, REGISTRY_ERROR_CODES.REJECTED)) return false;
  const errors = (err as { details?: { errors?: DistributionError[] } }).details?.errors;
  return Array.isArray(errors) && errors.some((e) => e.code === "MANIFEST_BLOB_UNKNOWN");
}

/** Copy the image `src` names to `dst`. */
export async function copyImage(src: ImageSource, dst: ImageDestination, options: CopyOptions = {}): Promise<CopyResult> {
  const signal = options.signal;
  const limit = pLimit(options.concurrency ?? 4);
  const cache = options.blobInfoCache;
  const blobs = new Map<string, Promise<PutBlobResult & { digest: Digest; size: number }>>();
  let manifestsWritten = 0;
  const emit = (e: CopyEvent) => options.onProgress?.(e);
  const check = () => {
    if (signal?.aborted) throw abortedError(`copy ${src.description} → ${dst.description}`, signal.reason);
  };

  const known = (digest: Digest) => {
    if (!cache) return;
    if (src.location) cache.recordKnown(src.location.registry, src.location.repository, digest);
    if (dst.location) cache.recordKnown(dst.location.registry, dst.location.repository, digest);
  };

  const mountCandidates = (digest: Digest): string[] => {
    if (!dst.location) return [];
    const out: string[] = [];
    if (src.location && src.location.registry === dst.location.registry && src.location.repository !== dst.location.repository) {
      out.push(src.location.repository);
    }
    for (const r of cache?.candidates(dst.location.registry, digest, dst.location.repository) ?? []) if (!out.includes(r)) out.push(r);
    return out;
  };

  function copyBlob(desc: Descriptor, bytes?: Uint8Array): Promise<PutBlobResult & { digest: Digest; size: number }> {
    const digest = parseDigest(desc.digest);
    let p = blobs.get(digest);
    if (!p) {
      p = limit(async () => {
        check();
        const b: BlobDescriptor = { digest, size: desc.size };
        emit({ type: "blob-start", digest, size: desc.size, mediaType: desc.mediaType });
        const source = bytes
          ? async function* (offset: number) {
              yield bytes.subarray(offset);
            }
          : (offset: number) => src.blob(b, offset, signal, dst.gathers ? { gather: false } : undefined);
        const r = await dst.putBlob(b, source, {
          mountFrom: mountCandidates(digest),
          ...(signal ? { signal } : {}),
          onProgress: (n) => emit({ type: "blob-progress", digest, size: desc.size, bytes: n }),
        });
        known(digest);
        // a config read whole for its DiffIDs was read from the source whatever the destination did
        if (bytes) r.bytes = bytes.length;
        emit({ type: "blob-done", digest, size: desc.size, mediaType: desc.mediaType, ...r });
        return { ...r, digest, size: desc.size };
      });
      blobs.set(digest, p);
    }
    return p;
  }

  /** The config's bytes, read whole when a blob-info cache wants its DiffIDs (else it streams like any blob). */
  async function readConfig(desc: Descriptor): Promise<Uint8Array | undefined> {
    if (!cache || options.learnDiffIds === false || desc.size > (options.maxConfigSize ?? 16 << 20)) return undefined;
    const chunks: Uint8Array[] = [];
    for await (const c of src.blob({ digest: desc.digest, size: desc.size }, 0, signal)) chunks.push(c);
    const bytes = new Uint8Array(Buffer.concat(chunks));
    verifyBytes(bytes, desc, "config");
    return bytes;
  }

  function recordDiffIds(manifest: OciManifest, config: Uint8Array): void {
    if (!cache || !IMAGE_CONFIG_MEDIA_TYPES.has(manifest.config.mediaType)) return;
    let diffIds: Digest[];
    try {
      diffIds = parseImageConfig(config).rootfs.diff_ids;
    } catch {
      return; // not an image config after all: nothing to learn
    }
    if (diffIds.length !== manifest.layers.length) return;
    manifest.layers.forEach((l, i) => {
      const c = layerCompression(l.mediaType);
      cache.recordDiffId(l.digest, diffIds[i]!, c ?? "unknown", l.size);
    });
  }

  async function putManifest(desc: Descriptor, bytes: Uint8Array, root: boolean): Promise<void> {
    check();
    const where = { root, tag: root ? options.tag : undefined, signal };
    if (await dst.hasManifest(desc, where)) {
      emit({ type: "manifest", digest: desc.digest, mediaType: desc.mediaType, status: "exists", ...(where.tag ? { tag: where.tag } : {}) });
      return;
    }
    await dst.putManifest(desc, bytes, where);
    manifestsWritten++;
    emit({ type: "manifest", digest: desc.digest, mediaType: desc.mediaType, status: "written", ...(where.tag ? { tag: where.tag } : {}) });
  }

  async function copyManifest(desc: Descriptor, bytes: Uint8Array, root: boolean): Promise<void> {
    if (INDEX_MEDIA_TYPES.has(desc.mediaType)) {
      const index = parseIndex(bytes, `index ${desc.digest}`);
      // children side by side: the blob limiter bounds the transfers
      const settled = await Promise.allSettled(
        index.manifests.map(async (child) => {
          check();
          await copyManifest(child, await src.manifest(child, signal), false);
        }),
      );
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed) throw failed.reason;
      await putManifest(desc, bytes, root);
      return;
    }
    const manifest = parseManifest(bytes, `manifest ${desc.digest}`);
    const config = await readConfig(manifest.config);
    /** The config and the layers side by side (the blob limiter bounds the transfers). */
    const copyBlobs = async () => {
      const settled = await Promise.allSettled([copyBlob(manifest.config, config), ...manifest.layers.filter((l) => !isForeign(l)).map((l) => copyBlob(l))]);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed) throw failed.reason;
    };
    await copyBlobs();
    if (config) recordDiffIds(manifest, config);
    try {
      await putManifest(desc, bytes, root);
    } catch (err) {
      if (!blobLostMeanwhile(err)) throw err;
      // A registry that collects garbage while it serves may have let a blob go between the
      // HEAD that found it and this PUT: send the image's blobs again (their HEADs tell which
      // are gone) and try once more.
      for (const b of [manifest.config, ...manifest.layers]) blobs.delete(parseDigest(b.digest));
      await copyBlobs();
      await putManifest(desc, bytes, root);
    }
  }

  check();
  const root = await src.root(signal);
  let rootDesc: Descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.size };
  let rootBytes = root.bytes;
  let selected: Descriptor | undefined;
  if (options.platform && INDEX_MEDIA_TYPES.has(root.mediaType)) {
    selected = selectManifest(parseIndex(root.bytes, src.description), options.platform, src.description);
    rootBytes = await src.manifest(selected, signal);
    rootDesc = { mediaType: selected.mediaType, digest: selected.digest, size: selected.size };
  }
  await copyManifest(rootDesc, rootBytes, true);
  const all = await Promise.all(blobs.values());
  return {
    digest: rootDesc.digest,
    mediaType: rootDesc.mediaType,
    size: rootDesc.size,
    ...(selected ? { selected } : {}),
    blobs: all,
    manifestsWritten,
    bytesTransferred: all.reduce((n, b) => n + b.bytes, 0),
  };
}
