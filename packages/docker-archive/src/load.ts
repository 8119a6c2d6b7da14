/**
 * `load(store, source)`: import a `docker save` / OCI archive in one pass.
 *
 * How the bytes flow (each byte of the input is read once and written once):
 *
 * 1. While the tar streams, every regular entry is classified by name and size.
 *    Small entries (≤ 1 MiB, within a memory budget) are kept in memory: JSON
 *    documents, `VERSION` files, small layers. Larger entries are streamed
 *    straight into the content store under a lease, hashed by the store's
 *    writer while written; compression is detected from the first bytes and a
 *    compressed blob is decompressed on the way to compute its DiffID. Entries
 *    under `blobs/` must be `blobs/sha256/<hex>` and are verified against
 *    their name at commit. From an archive file, entries of 8 MiB and more
 *    go to worker threads instead ({@link IngestPool}): each reads its entry
 *    from the file, hashes, checks and writes it, several at once, while the
 *    tar reader skips those bodies.
 * 2. When the stream ends, `manifest.json` (legacy / Docker 25 hybrid) and/or
 *    `index.json` (OCI) are resolved: every referenced path must be an entry
 *    (links followed, never outside the archive), every config digest, layer
 *    digest and DiffID is verified, all before anything becomes visible.
 * 3. Layers are registered in chain order (a layer needs its parent): a small
 *    layer from memory (`register`, hashing those few bytes again); a large one
 *    from the blob already in the content store with the DiffID computed while
 *    it streamed in (`layers.registerStoredBlob`), so its bytes are neither
 *    read nor written again. A store without that call gets `register` with
 *    the stored blob (one more read and hash). Layers already in the store
 *    are not read at all.
 * 4. Images are created (`store.images.create` with the verbatim config bytes)
 *    and tagged. An error at any point rolls back the images and tags this load
 *    created; blobs and layers left behind are unreferenced garbage for GC once
 *    the lease is released.
 * @module
 */
import { stat } from "node:fs/promises";
import { chainIds, type Compression, type Digest, FailedPreconditionError, hasCode } from "@berth/digest";
import { ArchiveEntries, readEntries } from "./entries.js";
import { ArchiveErrorCode } from "./errors.js";
import { type BlobSink, verifyLayers, WorkerIngest } from "./ingest.js";
import { planArchive } from "./plan.js";
import { defaultThreads } from "./pool.js";
import { LoadProgressTracker } from "./progress.js";
import { type ArchiveSource, type ArchiveSourceInfo, FileSource, sourceChunks } from "./source.js";
import type { ArchiveLease, ArchiveStore } from "./store.js";

/** Options of {@link load}. */
export interface LoadOptions {
  /** Largest JSON document accepted: manifest.json, index.json, configs, manifests (default 8 MiB; `ERR_JSON_TOO_LARGE`). */
  maxJsonSize?: number;
  /** Largest uncompressed size of one layer (default 1 TiB; `ERR_DECOMPRESSION_LIMIT`). */
  maxLayerSize?: number;
  /** Largest decompressed size of a gzip'd archive (default unlimited; `ERR_DECOMPRESSION_LIMIT`). */
  maxArchiveSize?: number;
  /** Bytes of small entries kept in memory while streaming (default 64 MiB); the rest goes to the content store. */
  memoryBudget?: number;
  /**
   * What to do when a tag in the archive already names a different image:
   * `"keep"` (default) leaves the tag where it is and reports it in
   * `tagConflicts`; `"move"` moves it (also reported); `"error"` refuses the
   * whole load (`ERR_TAG_CONFLICT`) before anything is visible.
   */
  tagConflict?: "keep" | "move" | "error";
  /** Shorthand for `tagConflict: "move"` (like `docker load`, which moves tags). */
  overwriteTags?: boolean;
  /** Repository for OCI `org.opencontainers.image.ref.name` annotations that are a bare tag (`latest`). */
  repository?: string;
  /** Called as bytes are read. */
  onProgress?: (p: LoadProgress) => void;
  /**
   * Worker threads for an archive file (a path, not gzip'd as a whole, into a
   * store whose content store has `fileWriter`, as the filesystem store's
   * does). Entries of at least `minEntrySize` bytes (default 8 MiB) are then
   * read, hashed, checked and written by up to `threads` workers (default: one
   * per core, at most 4), several layers at once, while this thread reads
   * the rest of the archive. `false`: everything on the calling thread.
   */
  workers?: false | { threads?: number; minEntrySize?: number };
}

/** Progress report of {@link load}. */
export interface LoadProgress {
  /** Bytes read from the source so far. */
  bytesRead: number;
  /** The entry being read. */
  entry: string;
  /** Size of the source when it is a file path. */
  total?: number;
}

/** One layer of a loaded image. */
export interface LoadedLayer {
  diffID: Digest;
  chainID: Digest;
  /** True when this load added the layer to the store (false: it was there already). */
  new: boolean;
  /** Uncompressed size of the layer tar. */
  size: number;
  /** The blob as found in the archive. */
  blob: { digest: Digest; size: number; compression: Compression };
}

/** One loaded image. */
export interface LoadedImage {
  /** Image ID (= config digest). */
  id: Digest;
  /** Manifest digest as the store records it. */
  manifestDigest: Digest;
  /** Digest of the manifest in the archive (OCI / hybrid archives only). */
  archiveManifestDigest?: Digest;
  /** Tags now pointing at this image (normalized, e.g. `docker.io/library/busybox:latest`). */
  tags: string[];
  layers: LoadedLayer[];
  /** True when the image was in the store before this load. */
  existed: boolean;
}

/** A tag from the archive that named a different image already. */
export interface TagConflict {
  ref: string;
  /** The image the tag pointed at before the load. */
  existing: Digest;
  /** The image the archive wanted it on. */
  wanted: Digest;
  action: "kept" | "moved";
}

/** What {@link load} did. */
export interface LoadResult {
  images: LoadedImage[];
  /** Layout found: `docker` (manifest.json), `oci` (index.json), or `docker+oci` (Docker 25+ hybrid). */
  format: "docker" | "oci" | "docker+oci";
  /** Compression of the archive as a whole. */
  compression: "none" | "gzip";
  /** Bytes read from the source. */
  bytesRead: number;
  tagConflicts: TagConflict[];
  /** OCI ref names that could not be turned into a tag (bare tags without `options.repository`). */
  ignoredRefNames: string[];
  /** Manifests skipped because they are not images (attestations, artifacts). */
  skippedManifests: Digest[];
}

const DEFAULT_MAX_JSON = 8 << 20;
const DEFAULT_MAX_LAYER = 2 ** 40;
const WORKER_MIN_ENTRY = 8 << 20;
const DEFAULT_MEMORY_BUDGET = 64 << 20;

/**
 * Load a `docker save` archive, a Docker 25+ hybrid archive, a skopeo
 * `docker-archive:` / `oci-archive:` tar or a plain OCI layout tar into
 * `store`, reading `source` once (a file path, Node Readable, web
 * ReadableStream or async iterable; a gzip'd archive is detected).
 *
 * Nothing becomes visible as an image or tag unless the whole archive
 * verified; see the module doc for the data flow and the README for error codes.
 */
export async function load(store: ArchiveStore, source: ArchiveSource, options: LoadOptions = {}): Promise<LoadResult> {
  const maxJson = options.maxJsonSize ?? DEFAULT_MAX_JSON;
  const maxLayer = options.maxLayerSize ?? DEFAULT_MAX_LAYER;
  const policy = options.tagConflict ?? (options.overwriteTags ? "move" : "keep");
  const info: ArchiveSourceInfo = { compression: "none", bytesRead: 0 };
  const fileSize = typeof source === "string" ? (await stat(source).catch(() => undefined))?.size : undefined;
  const progress = new LoadProgressTracker(info, options.onProgress, options.onProgress ? fileSize : undefined);
  // An archive file can hand large entries to worker threads (see options.workers).
  const file = typeof source === "string" ? new FileSource(source) : undefined;
  const threads = options.workers === false ? 0 : (options.workers?.threads ?? defaultThreads());
  const workerMinEntry = (options.workers ? options.workers.minEntrySize : undefined) ?? WORKER_MIN_ENTRY;
  const workers = file && threads > 0 && store.content.fileWriter ? new WorkerIngest(file, threads, workerMinEntry) : undefined;
  // Large enough to have an entry for the workers: start them while this thread reads.
  if (workers && (fileSize ?? 0) >= workerMinEntry) workers.warm();
  const lease = await store.lease();
  const fileWriter = store.content.fileWriter;
  const sink: BlobSink = {
    writer: () => store.content.writer({ lease }),
    ...(fileWriter ? { fileWriter: () => fileWriter.call(store.content, { lease }) } : {}),
  };
  try {
    const entries = await readEntries({
      input: file ?? sourceChunks(source),
      info,
      maxJson,
      maxLayer,
      memoryBudget: options.memoryBudget ?? DEFAULT_MEMORY_BUDGET,
      sink,
      progress,
      ...(options.maxArchiveSize !== undefined ? { maxArchiveSize: options.maxArchiveSize } : {}),
      ...(workers ? { workers } : {}),
    });
    const archive = new ArchiveEntries(entries, { maxJson, content: store.content });
    return await resolveAndCommit(store, archive, lease, options, policy, maxLayer, info);
  } finally {
    await workers?.close();
    await lease.release();
  }
}

async function resolveAndCommit(
  store: ArchiveStore,
  archive: ArchiveEntries,
  lease: ArchiveLease,
  options: LoadOptions,
  policy: "keep" | "move" | "error",
  maxLayer: number,
  info: ArchiveSourceInfo,
): Promise<LoadResult> {
  const plan = await planArchive(archive, options.repository !== undefined ? { repository: options.repository } : {});
  await verifyLayers(plan.layerChecks, { content: store.content, maxLayer });
  const planned = new Map(plan.images.map((p) => [p.id, p]));
  const { format, ignoredRefNames, skippedManifests } = plan;

  // ---- Tag conflicts, decided before anything is visible.
  const tagConflicts: TagConflict[] = [];
  const tagOwner = plan.tags;
  const toTag: Array<{ ref: string; id: Digest; force: boolean }> = [];
  for (const [ref, id] of tagOwner) {
    const existing = await currentTarget(store, ref);
    if (existing === undefined || existing === id) {
      toTag.push({ ref, id, force: false });
      continue;
    }
    if (policy === "error")
      throw new FailedPreconditionError(`tag ${ref} already names image ${existing}, the archive has it on ${id}`, {
        code: ArchiveErrorCode.TAG_CONFLICT,
        details: { ref, existing, wanted: id },
      });
    tagConflicts.push({ ref, existing, wanted: id, action: policy === "move" ? "moved" : "kept" });
    if (policy === "move") toTag.push({ ref, id, force: true });
  }

  // ---- Commit: layers in chain order, images, tags; roll back on failure.
  const layerResults = new Map<Digest, LoadedLayer>();
  const createdImages: Digest[] = [];
  const appliedTags: Array<{ ref: string; previous?: Digest }> = [];
  const images: LoadedImage[] = [];
  try {
    for (const p of planned.values()) {
      const chain = chainIds(p.diffIDs);
      const loadedLayers: LoadedLayer[] = [];
      for (let i = 0; i < p.layers.length; i++) {
        const chainID = chain[i]!;
        let r = layerResults.get(chainID);
        const f = p.layers[i]!;
        if (!r) {
          const blob = { digest: f.digest, size: f.size, compression: f.compression ?? "none" };
          if (await store.layers.has(chainID)) {
            const l = await store.layers.get(chainID);
            r = { diffID: l.diffID, chainID, new: false, size: l.size, blob };
          } else if (f.stored && f.diffID && f.uncompressedSize !== undefined && f.compression && store.layers.registerStoredBlob) {
            // The blob is in the content store and its DiffID was computed
            // (and checked against the config) while it streamed in.
            const l = await store.layers.registerStoredBlob(
              { digest: f.digest, size: f.size, compression: f.compression },
              f.diffID,
              f.uncompressedSize,
              i === 0 ? null : chain[i - 1]!,
              { lease, ...(f.contentSize === undefined ? {} : { contentSize: f.contentSize }) },
            );
            r = { diffID: l.diffID, chainID: l.chainID, new: !l.existed, size: l.size, blob };
          } else {
            const src = f.bytes ? [f.bytes] : await store.content.open(f.digest);
            const l = await store.layers.register(src, i === 0 ? null : chain[i - 1]!, {
              expectedDiffID: p.diffIDs[i]!,
              expectedDigest: f.digest,
              expectedSize: f.size,
              maxUncompressedSize: maxLayer,
              lease,
            });
            r = { diffID: l.diffID, chainID: l.chainID, new: !l.existed, size: l.size, blob };
          }
          layerResults.set(chainID, r);
        }
        loadedLayers.push(r);
      }
      images.push({
        id: p.id,
        manifestDigest: p.id, // set below, once the image exists
        ...(p.archiveManifestDigest ? { archiveManifestDigest: p.archiveManifestDigest } : {}),
        tags: [],
        layers: loadedLayers,
        existed: await imageExists(store, p.id),
      });
    }
    // All images at once when the store can: it validates every config and
    // looks up every rootfs before writing anything.
    const configs = [...planned.values()].map((p) => p.configBytes);
    if (store.images.createMany) {
      const ids = await store.images.createMany(configs, { lease });
      for (const id of ids) if (!images.find((im) => im.id === id)!.existed) createdImages.push(id);
    } else {
      for (const c of configs) {
        const img = await store.images.create(c, { lease });
        if (!images.find((im) => im.id === img.id)!.existed) createdImages.push(img.id);
      }
    }
    for (const im of images) im.manifestDigest = (await store.images.get(im.id)).manifestDigest;
    for (const p of planned.values()) {
      if (p.parent && (await imageExists(store, p.parent))) await store.images.setParent(p.id, p.parent);
    }
    for (const t of toTag) {
      const r = await store.references.tag(t.ref, t.id, { force: t.force });
      appliedTags.push({ ref: r.ref, ...(r.previous ? { previous: r.previous } : {}) });
      images.find((im) => im.id === t.id)!.tags.push(r.ref);
    }
  } catch (err) {
    for (const t of appliedTags.reverse()) {
      try {
        if (t.previous) await store.references.tag(t.ref, t.previous, { force: true });
        else await store.references.untag(t.ref);
      } catch {
        // best effort: the original error matters
      }
    }
    for (const id of createdImages.reverse()) await store.images.delete(id).catch(() => {});
    throw err;
  }
  for (const im of images) im.tags.sort();
  return {
    images,
    format,
    compression: info.compression,
    bytesRead: info.bytesRead,
    tagConflicts,
    ignoredRefNames,
    skippedManifests,
  };
}

async function imageExists(store: ArchiveStore, id: string): Promise<boolean> {
  try {
    await store.images.get(id);
    return true;
  } catch (err) {
    if (hasCode(err, "ERR_IMAGE_NOT_FOUND") || hasCode(err, "ERR_NOT_FOUND")) return false;
    throw err;
  }
}

async function currentTarget(store: ArchiveStore, ref: string): Promise<Digest | undefined> {
  try {
    return await store.references.resolve(ref);
  } catch (err) {
    if (err instanceof Error && "code" in err && String((err as { code: string }).code).includes("NOT_FOUND")) return undefined;
    throw err;
  }
}
