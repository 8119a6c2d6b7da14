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
import {
  chainIds,
  type Digest,
  type Compression,
  SizeMismatchError,
  isSha256Digest,
  sha256,
  hasCode,
  type BerthError,
} from "@berth/digest";
import {
  ArchiveErrorCode,
  digestMismatch,
  duplicateEntry,
  invalidBlobPath,
  invalidManifest,
  jsonTooLarge,
  layerNotTar,
  notInArchive,
  unsafeLink,
} from "./errors.js";
import { type BlobFacts, BlobScan } from "./scan.js";
import { type ArchiveSource, type ArchiveSourceInfo, decompressArchive, FileSource, sourceChunks } from "./source.js";
import { defaultThreads, IngestPool } from "./pool.js";
import type { ArchiveBlobWriter, ArchiveFileWriter, ArchiveLease, ArchiveStore } from "./store.js";
import { normalizeEntryName, readTar, resolveLinkTarget } from "./tar.js";
import { FailedPreconditionError, InvalidArgumentError } from "@berth/digest";
import {
  formatPlatform,
  hostPlatform,
  MEDIA_TYPE_DOCKER_CONFIG,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
} from "@berth/oci";
import { normalizeTag, parseJson, refNameToTag } from "./util.js";

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
const SMALL_ENTRY = 1 << 20;
const WRITE_AHEAD = 32 << 20;
const MAX_COMMITS = 4;
const WORKER_MIN_ENTRY = 8 << 20;
const DEFAULT_MEMORY_BUDGET = 64 << 20;
const META_NAMES = new Set(["manifest.json", "index.json", "repositories", "oci-layout"]);
const BLOB_RE = /^blobs\/sha256\/([0-9a-f]{64})$/;

interface FileEntry {
  kind: "file";
  name: string;
  size: number;
  digest: Digest;
  /** Content when kept in memory. */
  bytes?: Uint8Array;
  /** True when the content is in the content store. */
  stored: boolean;
  diffID?: Digest;
  uncompressedSize?: number;
  compression?: Compression;
  /** Why the uncompressed content is not a tar archive (checked with the DiffID; only layers must be tars). */
  notTar?: BerthError;
  /** Sum of the tar's file sizes (dockerd's layer size), when it is a tar. */
  contentSize?: number;
}
interface LinkEntry {
  kind: "link";
  name: string;
  rawTarget: string;
  target: string;
}
interface OtherEntry {
  kind: "dir" | "other";
  name: string;
}
type Entry = FileEntry | LinkEntry | OtherEntry;

interface PlannedImage {
  id: Digest;
  configBytes: Uint8Array;
  diffIDs: Digest[];
  layers: FileEntry[];
  tags: Set<string>;
  archiveManifestDigest?: Digest;
  parent?: string;
  /** Where it came from, for messages. */
  source: string;
  platform?: string;
}

async function collect(body: AsyncIterable<Uint8Array>, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let off = 0;
  for await (const c of body) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

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
  const budget = options.memoryBudget ?? DEFAULT_MEMORY_BUDGET;
  const policy = options.tagConflict ?? (options.overwriteTags ? "move" : "keep");
  const info: ArchiveSourceInfo = { compression: "none", bytesRead: 0 };
  const fileSize = typeof source === "string" ? (await stat(source).catch(() => undefined))?.size : undefined;
  const total = options.onProgress ? fileSize : undefined;
  // An archive file can hand large entries to worker threads (see options.workers).
  const file = typeof source === "string" ? new FileSource(source) : undefined;
  const threads = options.workers === false ? 0 : (options.workers?.threads ?? defaultThreads());
  const workerMinEntry = (options.workers ? options.workers.minEntrySize : undefined) ?? WORKER_MIN_ENTRY;
  const fileWriter = store.content.fileWriter?.bind(store.content);
  const delegate = file && threads > 0 && fileWriter ? { file, fileWriter } : undefined;
  let pool: IngestPool | undefined;
  /** Byte ranges of the archive that workers are still reading. */
  const onWorkers = new Set<{ start: number; end: number }>();
  let reported = 0;
  // Progress: bytes the reader passed, less those a worker has still to read.
  const progress = (entry: string) => {
    if (!options.onProgress) return;
    let done = info.bytesRead;
    for (const r of onWorkers) done -= Math.max(0, Math.min(r.end, info.bytesRead) - r.start);
    reported = Math.max(reported, done);
    options.onProgress({ bytesRead: reported, entry, ...(total !== undefined ? { total } : {}) });
  };
  if (delegate && (fileSize ?? 0) >= workerMinEntry) {
    // Large enough to have an entry for the workers: start them while this thread reads.
    pool = new IngestPool(threads);
    pool.warm();
  }
  const lease = await store.lease();
  try {
    const entries = await ingest();
    return await resolveAndCommit(store, entries, lease, options, policy, maxJson, maxLayer, info);
  } finally {
    await pool?.close();
    await lease.release();
  }

  async function ingest(): Promise<Map<string, Entry>> {
    const ordered: Array<Entry | Promise<FileEntry>> = [];
    const committing = new Set<Promise<FileEntry>>();
    try {
      return await ingestEntries(ordered, committing);
    } catch (err) {
      // Stop the workers; let background commits settle before the lease goes away.
      pool?.cancel(err);
      await Promise.allSettled(ordered);
      throw err;
    }
  }

  async function ingestEntries(
    ordered: Array<Entry | Promise<FileEntry>>,
    committing: Set<Promise<FileEntry>>,
  ): Promise<Map<string, Entry>> {
    const entries = new Map<string, Entry>();
    let memUsed = 0;
    const chunks = decompressArchive(file ?? sourceChunks(source), info, options.maxArchiveSize);
    // Bodies the workers read are not read here (only in a plain tar are positions those of the file).
    const skipBody = delegate
      ? (to: number) => {
          if (info.compression === "none") delegate.file.skipTo(to);
        }
      : undefined;
    for await (const e of readTar(chunks, skipBody ? { skipBody } : {})) {
      progress(e.name);
      if (e.name === "") continue; // "./" itself
      let rec: Entry;
      if (e.type === "directory" || e.type === "other") {
        rec = { kind: e.type === "directory" ? "dir" : "other", name: e.name };
      } else if (e.type === "symlink" || e.type === "hardlink") {
        const target = resolveLinkTarget(e.name, e.linkname ?? "", e.type);
        rec = { kind: "link", name: e.name, rawTarget: e.linkname ?? "", target };
      } else {
        const m = BLOB_RE.exec(e.name);
        if (e.name.startsWith("blobs/") && !m) throw invalidBlobPath(e.name);
        const expected = m ? (`sha256:${m[1]}` as Digest) : undefined;
        if (META_NAMES.has(e.name)) {
          if (e.size > maxJson) throw jsonTooLarge(e.name, e.size, maxJson);
          const bytes = await collect(e.body(), e.size);
          rec = { kind: "file", name: e.name, size: e.size, digest: sha256(bytes), bytes, stored: false };
        } else if (e.size <= SMALL_ENTRY && memUsed + e.size <= budget) {
          const bytes = await collect(e.body(), e.size);
          memUsed += e.size;
          const digest = sha256(bytes);
          if (expected && digest !== expected) throw digestMismatch(`archive entry ${e.name}`, expected, digest);
          rec = { kind: "file", name: e.name, size: e.size, digest, bytes, stored: false };
        } else {
          // On a worker (its body is not read here), or streamed now; either
          // way committed (fsync, rename) in the background while the next
          // entries stream, a few at a time.
          if (delegate && info.compression === "none" && e.size >= workerMinEntry) {
            // Queued jobs cost nothing (no open file) until a worker takes them.
            const p = ingestOnWorker(delegate, e.name, e.dataOffset, e.size, expected);
            p.catch(() => {});
            ordered.push(p);
            continue;
          }
          const p = (await ingestToStore(e.name, e.size, e.body(), expected)).commit;
          p.catch(() => {});
          ordered.push(p);
          committing.add(p);
          p.finally(() => committing.delete(p)).catch(() => {});
          while (committing.size >= MAX_COMMITS) await Promise.race(committing);
          continue;
        }
      }
      ordered.push(rec);
    }
    for (const x of ordered) {
      const rec = await x;
      const prev = entries.get(rec.name);
      if (prev === undefined) entries.set(rec.name, rec);
      else if (!sameEntry(prev, rec)) throw duplicateEntry(rec.name);
    }
    progress("");
    // Every link must land on an entry, never outside (checked at read) or nowhere.
    for (const e of entries.values()) if (e.kind === "link") followLinks(entries, e.name, e.name);
    return entries;
  }

  /** Read, hash, scan and write an entry on a worker thread; commit it here. */
  async function ingestOnWorker(
    d: NonNullable<typeof delegate>,
    name: string,
    offset: number,
    size: number,
    expected: Digest | undefined,
  ): Promise<FileEntry> {
    let fw: ArchiveFileWriter | undefined;
    let entry: FileEntry;
    const range = { start: offset, end: offset + size };
    onWorkers.add(range);
    try {
      pool ??= new IngestPool(threads);
      const done = await pool.run({ file: d.file.path, offset, size, name, maxLayer }, async () => {
        fw = await d.fileWriter({ lease });
        return fw.path;
      });
      const committed = await fw!.commit(done.digest, size, expected).catch((err: unknown) => {
        throw blobMismatch(err, name, expected);
      });
      entry = storedEntry(name, committed.digest, size, done.facts);
    } catch (err) {
      await fw?.abort().catch(() => {});
      throw err;
    } finally {
      onWorkers.delete(range);
    }
    progress(name);
    return entry;
  }

  async function ingestToStore(
    name: string,
    size: number,
    body: AsyncIterable<Uint8Array>,
    expected: Digest | undefined,
  ): Promise<{ commit: Promise<FileEntry> }> {
    const w: ArchiveBlobWriter = await store.content.writer({ lease });
    const scan = new BlobScan(name, maxLayer);
    // The writer hashes each chunk synchronously on write() and writes it at
    // its own offset; keep up to WRITE_AHEAD bytes in flight so reading,
    // hashing and several disk writes overlap instead of taking turns.
    const inflight: Array<{ p: Promise<void>; n: number }> = [];
    let inflightBytes = 0;
    try {
      for await (const chunk of body) {
        const p = w.write(chunk);
        p.catch(() => {});
        inflight.push({ p, n: chunk.length });
        inflightBytes += chunk.length;
        const scanned = scan.push(chunk);
        if (scanned) await scanned;
        while (inflightBytes > WRITE_AHEAD) {
          const first = inflight.shift()!;
          await first.p;
          inflightBytes -= first.n;
        }
      }
      for (const x of inflight) await x.p;
      const facts = await scan.finish();
      const commit = (async (): Promise<FileEntry> => {
        let committed: { digest: Digest; size: number };
        try {
          committed = await w.commit(size, expected);
        } catch (err) {
          await w.abort().catch(() => {});
          throw blobMismatch(err, name, expected);
        }
        return storedEntry(name, committed.digest, size, facts);
      })();
      return { commit };
    } catch (err) {
      scan.abort();
      for (const x of inflight) await x.p.catch(() => {});
      await w.abort().catch(() => {});
      throw err;
    }
  }
}

/** A blob whose digest is not the one its `blobs/sha256/<hex>` name promised: `ERR_DIGEST_MISMATCH` naming the entry. */
function blobMismatch(err: unknown, name: string, expected: Digest | undefined): unknown {
  if (!hasCode(err, "ERR_DIGEST_MISMATCH") || !expected) return err;
  const actual = (err as { details?: { actual?: string } }).details?.actual;
  return digestMismatch(`archive entry ${name}`, expected, String(actual ?? "different content"));
}

/** An entry's layer fields from its scan (an uncompressed blob's DiffID is its digest). */
function layerFields(digest: Digest, facts: BlobFacts): Pick<FileEntry, "compression" | "diffID" | "uncompressedSize" | "notTar" | "contentSize"> {
  const { diffID, ...rest } = facts;
  return { ...rest, diffID: diffID ?? digest };
}

/** The record of an entry committed to the content store. */
function storedEntry(name: string, digest: Digest, size: number, facts: BlobFacts): FileEntry {
  return { kind: "file", name, size, digest, stored: true, ...layerFields(digest, facts) };
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "file" && b.kind === "file") return a.digest === b.digest && a.size === b.size;
  if (a.kind === "link" && b.kind === "link") return a.target === b.target;
  return true;
}

/** Follow links from `name` to a file entry; `undefined` if `name` is not an entry. */
function followLinks(entries: Map<string, Entry>, name: string, referencedBy: string): FileEntry | undefined {
  let cur = entries.get(name);
  for (let hops = 0; cur !== undefined && cur.kind === "link"; hops++) {
    if (hops > 32) throw unsafeLink(cur.name, cur.rawTarget, "too many levels of links");
    const next = entries.get(cur.target);
    if (next === undefined) throw unsafeLink(cur.name, cur.rawTarget, `points to ${cur.target}, which is not an entry of the archive (referenced by ${referencedBy})`);
    cur = next;
  }
  if (cur === undefined) return undefined;
  if (cur.kind !== "file") throw notInArchive(`${JSON.stringify(name)} (a ${cur.kind}, not a file)`, referencedBy);
  return cur;
}

async function resolveAndCommit(
  store: ArchiveStore,
  entries: Map<string, Entry>,
  lease: ArchiveLease,
  options: LoadOptions,
  policy: "keep" | "move" | "error",
  maxJson: number,
  maxLayer: number,
  info: ArchiveSourceInfo,
): Promise<LoadResult> {
  const lookup = (path: string, referencedBy: string): FileEntry => {
    const name = normalizeEntryName(path);
    const f = followLinks(entries, name, referencedBy);
    if (!f) throw notInArchive(JSON.stringify(path), referencedBy);
    return f;
  };
  const lookupBlob = (digest: string, referencedBy: string): FileEntry => {
    if (!isSha256Digest(digest)) throw invalidManifest(referencedBy, `unsupported or invalid digest ${JSON.stringify(digest)}`);
    return lookup(`blobs/sha256/${digest.slice(7)}`, referencedBy);
  };
  const bytesOf = async (f: FileEntry, _what: string): Promise<Uint8Array> => {
    if (f.size > maxJson) throw jsonTooLarge(f.name, f.size, maxJson);
    if (f.bytes) return f.bytes;
    return store.content.readBytes(f.digest, maxJson);
  };
  // An entry held in memory gets the scan a streamed one got on its way in.
  const diffOf = async (f: FileEntry): Promise<FileEntry> => {
    if (f.diffID === undefined) {
      const scan = new BlobScan(f.name, maxLayer);
      try {
        for await (const chunk of f.bytes ? [f.bytes] : await store.content.open(f.digest)) await scan.push(chunk as Uint8Array);
      } catch (err) {
        scan.abort();
        throw err;
      }
      Object.assign(f, layerFields(f.digest, await scan.finish()));
    }
    return f;
  };

  const ignoredRefNames: string[] = [];
  const skippedManifests: Digest[] = [];
  const planned = new Map<Digest, PlannedImage>();
  const hasIndex = entries.has("index.json");
  const hasManifest = entries.has("manifest.json");
  if (!hasIndex && !hasManifest)
    throw new InvalidArgumentError("archive has neither manifest.json nor index.json", { code: ArchiveErrorCode.UNKNOWN_FORMAT });

  const planImage = async (
    configEntry: FileEntry,
    layerEntries: FileEntry[],
    source: string,
    extra: Partial<PlannedImage>,
  ): Promise<PlannedImage> => {
    const configBytes = await bytesOf(configEntry, source);
    const id = sha256(configBytes);
    const config = parseJson(configBytes, `config ${configEntry.name}`) as { rootfs?: { diff_ids?: unknown } };
    const diffIDs = config.rootfs?.diff_ids ?? [];
    if (!Array.isArray(diffIDs) || !diffIDs.every((d) => typeof d === "string" && isSha256Digest(d)))
      throw invalidManifest(`config ${configEntry.name}`, "rootfs.diff_ids must be an array of sha256 digests");
    if (diffIDs.length !== layerEntries.length)
      throw invalidManifest(source, `lists ${layerEntries.length} layers but config ${id} has ${diffIDs.length} DiffIDs`);
    for (let i = 0; i < layerEntries.length; i++) {
      const f = await diffOf(layerEntries[i]!);
      if (f.diffID !== diffIDs[i])
        throw digestMismatch(`DiffID of layer ${i} (${f.name}) of image ${id}`, diffIDs[i] as string, f.diffID!);
      if (f.notTar) throw layerNotTar(`layer ${i} (${f.name}) of image ${id}`, f.notTar);
    }
    const prev = planned.get(id);
    if (prev) {
      for (const t of extra.tags ?? []) prev.tags.add(t);
      prev.archiveManifestDigest ??= extra.archiveManifestDigest;
      prev.parent ??= extra.parent;
      return prev;
    }
    const p: PlannedImage = {
      id,
      configBytes,
      diffIDs: diffIDs as Digest[],
      layers: layerEntries,
      tags: new Set(extra.tags ?? []),
      source,
      ...(extra.archiveManifestDigest ? { archiveManifestDigest: extra.archiveManifestDigest } : {}),
      ...(extra.parent ? { parent: extra.parent } : {}),
    };
    planned.set(id, p);
    return p;
  };

  // ---- OCI: index.json → (nested indexes) → manifests.
  if (hasIndex) {
    const idx = lookup("index.json", "the archive");
    const walk = async (doc: unknown, docName: string, depth: number, inheritedRefs: string[]): Promise<void> => {
      if (depth > 8) throw invalidManifest(docName, "indexes nested too deeply");
      const manifests = (doc as { manifests?: unknown }).manifests;
      if (!Array.isArray(manifests)) throw invalidManifest(docName, "manifests must be an array");
      // Platform choice for tags shared by several images of one index.
      const groups: PlannedImage[] = [];
      for (const [i, m] of manifests.entries()) {
        const where = `${docName} manifests[${i}]`;
        if (typeof m !== "object" || m === null) throw invalidManifest(where, "must be a descriptor");
        const desc = m as { mediaType?: string; digest?: string; size?: number; annotations?: Record<string, string>; platform?: { os?: string; architecture?: string } };
        if (typeof desc.digest !== "string") throw invalidManifest(where, "digest is missing");
        const f = lookupBlob(desc.digest, where);
        if (typeof desc.size === "number" && desc.size !== f.size)
          throw new SizeMismatchError(`${where}: blob ${desc.digest} is ${f.size} bytes, descriptor says ${desc.size}`);
        const refs = inheritedRefs;
        const bytes = await bytesOf(f, where);
        const child = parseJson(bytes, `blob ${desc.digest}`) as { mediaType?: string; manifests?: unknown; config?: unknown; layers?: unknown };
        const mt = desc.mediaType ?? child.mediaType ?? (Array.isArray(child.manifests) ? MEDIA_TYPE_OCI_INDEX : MEDIA_TYPE_OCI_MANIFEST);
        if (mt === MEDIA_TYPE_OCI_INDEX || mt === MEDIA_TYPE_DOCKER_MANIFEST_LIST) {
          await walk(child, `index ${desc.digest}`, depth + 1, refs);
          continue;
        }
        if (mt !== MEDIA_TYPE_OCI_MANIFEST && mt !== MEDIA_TYPE_DOCKER_MANIFEST) {
          skippedManifests.push(desc.digest as Digest);
          continue;
        }
        const mname = `manifest ${desc.digest}`;
        const cfg = child.config as { mediaType?: string; digest?: string; size?: number } | undefined;
        if (!cfg || typeof cfg.digest !== "string") throw invalidManifest(mname, "config descriptor is missing");
        if (cfg.mediaType !== MEDIA_TYPE_OCI_CONFIG && cfg.mediaType !== MEDIA_TYPE_DOCKER_CONFIG) {
          skippedManifests.push(desc.digest as Digest);
          continue;
        }
        const cfgEntry = lookupBlob(cfg.digest, `${mname} config`);
        if (typeof cfg.size === "number" && cfg.size !== cfgEntry.size)
          throw new SizeMismatchError(`${mname}: config ${cfg.digest} is ${cfgEntry.size} bytes, descriptor says ${cfg.size}`);
        if (!Array.isArray(child.layers)) throw invalidManifest(mname, "layers must be an array");
        const layerEntries = child.layers.map((l: { digest?: unknown; size?: unknown }, j: number) => {
          if (typeof l !== "object" || l === null || typeof l.digest !== "string") throw invalidManifest(`${mname} layers[${j}]`, "must be a descriptor");
          const le = lookupBlob(l.digest, `${mname} layers[${j}]`);
          if (typeof l.size === "number" && l.size !== le.size)
            throw new SizeMismatchError(`${mname} layers[${j}]: blob ${l.digest} is ${le.size} bytes, descriptor says ${l.size}`);
          return le;
        });
        const platform = desc.platform ? `${desc.platform.os}/${desc.platform.architecture}` : undefined;
        const img = await planImage(cfgEntry, layerEntries, mname, { archiveManifestDigest: desc.digest as Digest });
        if (platform) img.platform = platform;
        groups.push(img);
      }
      // A ref name on a descriptor applies to the one image under it; for a
      // multi-platform index pick this machine's platform, else the first.
      if (inheritedRefs.length > 0 && groups.length > 0) {
        const want = formatPlatform(hostPlatform());
        const chosen = groups.find((g) => g.platform === want) ?? groups[0]!;
        for (const r of inheritedRefs) chosen.tags.add(r);
      }
    };
    // The top-level index: refs are per descriptor, so walk each one alone.
    const top = parseJson(await bytesOf(idx, "index.json"), "index.json") as { manifests?: unknown };
    if (!Array.isArray(top.manifests)) throw invalidManifest("index.json", "manifests must be an array");
    for (const [i, m] of top.manifests.entries()) {
      const annotations = (m as { annotations?: Record<string, string> } | null)?.annotations;
      const t = refNameToTag(annotations, options.repository);
      if (t.ignored) ignoredRefNames.push(t.ignored);
      await walk({ manifests: [{ ...(m as object), annotations: undefined }] }, `index.json manifests[${i}]`, 1, t.tag ? [t.tag] : []);
    }
  }

  // ---- Legacy / hybrid: manifest.json.
  if (hasManifest) {
    const mf = lookup("manifest.json", "the archive");
    const doc = parseJson(await bytesOf(mf, "manifest.json"), "manifest.json", true);
    if (!Array.isArray(doc)) throw invalidManifest("manifest.json", "must be a JSON array");
    for (const [i, item] of doc.entries()) {
      const where = `manifest.json[${i}]`;
      if (typeof item !== "object" || item === null) throw invalidManifest(where, "must be an object");
      const { Config, RepoTags, Layers, Parent } = item as { Config?: unknown; RepoTags?: unknown; Layers?: unknown; Parent?: unknown };
      if (typeof Config !== "string") throw invalidManifest(where, "Config must be a string");
      if (!Array.isArray(Layers) || !Layers.every((l) => typeof l === "string")) throw invalidManifest(where, "Layers must be an array of strings");
      if (RepoTags !== undefined && RepoTags !== null && (!Array.isArray(RepoTags) || !RepoTags.every((t) => typeof t === "string")))
        throw invalidManifest(where, "RepoTags must be an array of strings");
      const cfg = lookup(Config, `${where} Config`);
      const layerEntries = (Layers as string[]).map((l, j) => lookup(l, `${where} Layers[${j}]`));
      const tags = ((RepoTags as string[] | null | undefined) ?? []).map((t) => normalizeTag(t, `${where} RepoTags`));
      await planImage(cfg, layerEntries, where, {
        tags: new Set(tags),
        ...(typeof Parent === "string" && Parent ? { parent: Parent } : {}),
      });
    }
  }

  // ---- Tag conflicts, decided before anything is visible.
  const tagConflicts: TagConflict[] = [];
  const tagOwner = new Map<string, Digest>();
  for (const p of planned.values())
    for (const t of p.tags) {
      const other = tagOwner.get(t);
      if (other && other !== p.id) throw invalidManifest("archive", `tag ${t} is given to two images (${other} and ${p.id})`);
      tagOwner.set(t, p.id);
    }
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
    format: hasIndex && hasManifest ? "docker+oci" : hasIndex ? "oci" : "docker",
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
