/**
 * `load(store, source)`: import a `docker save` / OCI archive in one pass.
 * This file is the public entry and the order of the steps; each step is a
 * module of its own:
 *
 * 1. {@link readEntries} (`entries.ts`, `ingest.ts`): the tar streams once;
 *    documents and small entries are kept in memory, large entries go into
 *    the content store as they stream (or, from an archive file, through
 *    worker threads), hashed, scanned for compression and DiffID, verified
 *    against a `blobs/sha256/<hex>` name.
 * 2. {@link planArchive} (`plan.ts`): `index.json` and/or `manifest.json`,
 *    their manifests and configs, become a plan — images, configs, layer
 *    entries, tags, parents — with every path and digest checked; then
 *    {@link verifyLayers} checks each layer's DiffID against its config.
 * 3. {@link decideTags} (`commit.ts`): tags that already name another image
 *    are kept, moved or refused, before anything is visible.
 * 4. {@link commitPlan} through a {@link LoadTransaction} (`commit.ts`):
 *    layers in chain order, images, parents, tags. An error at any step rolls
 *    back what the transaction recorded and sweeps the blobs and layers only
 *    its lease protects.
 *
 * The README ("How `load` reads each byte once") has the data flow.
 * @module
 */
import { stat } from "node:fs/promises";
import type { Compression, Digest } from "@berth/digest";
import { claimSource } from "@berth/layer-store";
import { checkAbsentLayers, commitPlan, decideTags, LoadTransaction } from "./commit.js";
import { ArchiveEntries, readEntries } from "./entries.js";
import { verifyLayers, WorkerIngest } from "./ingest.js";
import { planArchive } from "./plan.js";
import { truncated } from "./errors.js";
import { defaultThreads, WORKER_MIN_ENTRY } from "./pool.js";
import { LoadProgressTracker } from "./progress.js";
import { type ArchiveSource, type ArchiveSourceInfo, FileSource } from "./source.js";
import type { ArchiveStore } from "./store.js";

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
  /**
   * Stop the load: checked at every archive entry, while index trees are
   * walked (which yields to the event loop every few milliseconds), and
   * before and after the commit; the load then fails with the signal's
   * reason, its workers stop and nothing of it stays visible.
   */
  signal?: AbortSignal;
  /**
   * Entries besides the images to hand back in {@link LoadResult.extraFiles}
   * (e.g. a parent chain's files): regular files whose name matches, read in
   * the same pass, within `maxJsonSize`, before anything is committed.
   */
  extraFiles?: (name: string) => boolean;
  /**
   * Take a layer that `manifest.json` names but the archive leaves out from
   * the store, when the store has it (by the chain of DiffIDs its image's
   * config gives), as dockerd's loader does; a layer in neither is
   * `ERR_NOT_IN_ARCHIVE`. An incremental `docker save` archive for a daemon
   * that has the base is such an archive. Default true; false: every layer
   * must be in the archive.
   */
  layersFromStore?: boolean;
}

/** An entry besides the images, as {@link LoadOptions.extraFiles} asked for it. */
export interface LoadedExtraFile {
  name: string;
  bytes: Uint8Array;
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
  /** The entries {@link LoadOptions.extraFiles} matched, in name order (none unless asked). */
  extraFiles: LoadedExtraFile[];
}

const DEFAULT_MAX_JSON = 8 << 20;
const DEFAULT_MAX_LAYER = 2 ** 40;
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
  // A stream is read from now on, before the first await: nothing of it is
  // lost while the store is prepared (see claimSource).
  const stream = typeof source === "string" ? undefined : claimSource(source);
  const info: ArchiveSourceInfo = { compression: "none", bytesRead: 0 };
  const fileSize = typeof source === "string" ? (await stat(source).catch(() => undefined))?.size : undefined;
  const progress = new LoadProgressTracker(info, options.onProgress, options.onProgress ? fileSize : undefined);
  // An archive file can hand large entries to worker threads (see options.workers).
  const file = typeof source === "string" ? new FileSource(source) : undefined;
  const threads = options.workers === false ? 0 : (options.workers?.threads ?? defaultThreads());
  const workerMinEntry = (options.workers ? options.workers.minEntrySize : undefined) ?? WORKER_MIN_ENTRY;
  const workers = file && threads > 0 && store.content.fileWriter ? new WorkerIngest(file, threads, workerMinEntry) : undefined;
  let tx: LoadTransaction;
  try {
    options.signal?.throwIfAborted();
    // Large enough to have an entry for the workers: start them now, so that
    // their start-up (~35 ms each) overlaps taking the lease and reading the
    // archive's first headers.
    if (workers && (fileSize ?? 0) >= workerMinEntry) workers.warm();
    tx = await LoadTransaction.begin(store);
  } catch (err) {
    stream?.release();
    await workers?.close();
    throw err;
  }
  let failed = false;
  try {
    const entries = await readEntries({
      input: file ?? stream!,
      info,
      maxJson,
      maxLayer,
      memoryBudget: options.memoryBudget ?? DEFAULT_MEMORY_BUDGET,
      sink: tx,
      progress,
      ...(options.maxArchiveSize !== undefined ? { maxArchiveSize: options.maxArchiveSize } : {}),
      ...(workers ? { workers } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (info.bytesRead === 0) throw truncated("the source is empty (0 bytes read)");
    const archive = new ArchiveEntries(entries, { maxJson, content: store.content });
    const extraFiles = options.extraFiles ? await archive.files(options.extraFiles) : [];
    const plan = await planArchive(archive, {
      ...(options.repository !== undefined ? { repository: options.repository } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      absentLayers: options.layersFromStore !== false,
    });
    await checkAbsentLayers(store, plan.images);
    await verifyLayers(plan.layerChecks, { content: store.content, maxLayer });
    // Tag conflicts are decided before anything is visible.
    const tags = await decideTags(store.references, plan.tags, policy);
    options.signal?.throwIfAborted();
    const images = await commitPlan(tx, { images: plan.images, tags: tags.steps, maxLayer });
    // a signal that came while committing still rolls it back
    options.signal?.throwIfAborted();
    return {
      images,
      format: plan.format,
      compression: info.compression,
      bytesRead: info.bytesRead,
      tagConflicts: tags.conflicts,
      ignoredRefNames: plan.ignoredRefNames,
      skippedManifests: plan.skippedManifests,
      extraFiles,
    };
  } catch (err) {
    failed = true;
    await tx.rollback();
    throw err;
  } finally {
    stream?.release();
    await workers?.close();
    // after a failure, what only this load wrote goes (its workers are stopped by now)
    await tx.end({ sweep: failed });
  }
}
