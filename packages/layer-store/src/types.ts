import type { Readable } from "node:stream";
import type { ByteSource, Compression, Digest } from "@berth/digest";
import { checkDigest } from "./paths.js";
import type { LayerScanOptions, ScanFacts } from "./scan.js";

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
}

/** A layer, addressed by its ChainID. */
export interface Layer {
  /** ChainID of the layer chain ending at this layer (OCI image-spec identity). */
  chainID: Digest;
  /** Digest of the uncompressed tar. */
  diffID: Digest;
  /** ChainID of the parent layer, `null` for a base layer. */
  parent: Digest | null;
  /** Size of the uncompressed tar in bytes (headers, padding and end blocks included). */
  size: number;
  /**
   * Sum of the sizes of the files in the layer (the tar headers' sizes), which
   * is what dockerd reports as a layer's size (`docker history`, image `Size`,
   * `docker system df`): smaller than {@link size}, which counts tar headers and
   * padding too, and unrelated to `blob.size` (the compressed bytes). A layer of
   * only directories has `contentSize` 0. Absent on records written before
   * berth recorded it: use `contentSize ?? size`, as `@berth/image-store` does
   * for `Image.size`.
   */
  contentSize?: number;
  /** The blob as stored: tar, tar+gzip or tar+zstd. */
  blob: Descriptor;
}

/** Digest and size of a stored blob. */
export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** An open blob read at positions into the caller's buffers (a `FileHandle`'s `read`). */
export interface ContentReader extends BlobInfo {
  /** Read up to `into.byteLength` bytes at `position`; resolves with the count (0 only at the end). */
  read(into: Uint8Array, position: number): Promise<number>;
  /** Release the blob (idempotent). */
  close(): Promise<void>;
}

/** Result of committing a blob. `existed` is true when the blob was already stored. */
export interface CommitResult extends BlobInfo {
  existed: boolean;
}

/**
 * Protects what is created under it (blobs, layers) from garbage collection
 * until released, or until the process that took it dies, or until it expires.
 */
export interface Lease {
  readonly id: string;
  /** Drop the protection (idempotent). */
  release(): Promise<void>;
}

/** Options of {@link ContentStore.writer}. */
export interface WriterOptions {
  /** Protect the committed blob from GC until the lease is released. */
  lease?: Lease;
}

/**
 * An ingest in progress: bytes are hashed while written; nothing is visible
 * until `commit` verified size and digest.
 */
export interface BlobWriter {
  /** Append a chunk. */
  write(chunk: Uint8Array): Promise<void>;
  /** Bytes written so far. */
  readonly written: number;
  /**
   * Make the blob visible: fsync, verify `expectedSize` and `expectedDigest`
   * (`SizeMismatchError` / `DigestMismatchError`, nothing left visible), move it
   * into place. A blob that exists already is success with `existed: true`.
   */
  commit(expectedSize?: number, expectedDigest?: Digest | string): Promise<CommitResult>;
  /** Discard the ingest (idempotent). */
  abort(): Promise<void>;
}

/** Blob lookups (containerd's Provider + InfoProvider). */
export interface ContentProvider {
  /** Digest and size of a stored blob. @throws NotFoundError `ERR_BLOB_NOT_FOUND` */
  info(digest: Digest | string): Promise<BlobInfo>;
  /** True when the blob is stored. */
  has(digest: Digest | string): Promise<boolean>;
  /** A Node stream of the blob's bytes. @throws NotFoundError `ERR_BLOB_NOT_FOUND` */
  open(digest: Digest | string): Promise<Readable>;
  /**
   * The blob for positional reads into the caller's buffers (see
   * `pumpReader`, which reuses a few buffers instead of allocating one per
   * chunk as a stream does). Close it when done.
   * @throws NotFoundError `ERR_BLOB_NOT_FOUND`
   */
  openReader(digest: Digest | string): Promise<ContentReader>;
  /** The whole blob, for small documents. @throws FailedPreconditionError `ERR_BLOB_TOO_LARGE` when larger than `maxSize` */
  readBytes(digest: Digest | string, maxSize: number): Promise<Uint8Array>;
  /** Every stored blob. */
  list(): AsyncIterable<BlobInfo>;
}

/**
 * An ingest file that the caller fills itself (from a worker thread or a
 * child process) while hashing what it writes, then commits under the digest
 * it computed. The store fsyncs the file and checks its size, not its digest:
 * whoever commits vouches for it (`fsck` would report a lie as `blob-corrupt`).
 * For hashing on other threads, not for untrusted code.
 */
export interface FileWriter {
  /** Absolute path of the ingest file: exists, empty, to be opened for writing. */
  readonly path: string;
  /**
   * fsync, check that the file holds `size` bytes (`SizeMismatchError`), and
   * make it the blob `digest`; `expectedDigest`, when given, must equal
   * `digest` (`DigestMismatchError`). Nothing is visible on failure.
   */
  commit(digest: Digest | string, size: number, expectedDigest?: Digest | string): Promise<CommitResult>;
  /** Discard the ingest (idempotent). */
  abort(): Promise<void>;
}

/** Blob writes (containerd's Ingester). */
export interface ContentIngester {
  /** Start an ingest. */
  writer(opts?: WriterOptions): Promise<BlobWriter>;
  /**
   * Optional (the filesystem store has it): an ingest file to be written by
   * another thread, see {@link FileWriter}.
   */
  fileWriter?(opts?: WriterOptions): Promise<FileWriter>;
  /** Store `bytes` (one-shot writer), verifying `expected` when given. */
  put(bytes: Uint8Array, expected?: { digest?: Digest | string; size?: number }, opts?: WriterOptions): Promise<CommitResult>;
  /**
   * When the blob is stored: protect it with `opts.lease` (as a writer's commit
   * of the same content would) and return its info; else undefined. Lets a
   * caller that was about to write a blob use the stored copy instead.
   */
  hold(digest: Digest | string, opts?: WriterOptions): Promise<BlobInfo | undefined>;
}

/** Content-addressed blob store: `blobs/sha256/<hex>` under the root. */
export interface ContentStore extends ContentProvider, ContentIngester {}

/** What ingesting a layer blob learned: everything needed to record a layer from it. */
export interface LayerBlobFacts {
  /** The stored blob (an empty `mediaType` is derived from `compression`). */
  blob: Descriptor;
  compression: Compression;
  /** Digest of the uncompressed tar. */
  diffID: Digest;
  /** Size of the uncompressed tar. */
  uncompressedSize: number;
  /** Sum of the tar's file sizes: the layer's size as dockerd counts it. */
  contentSize: number;
}

/** Options of {@link LayerStore.ingestLayer}. */
export interface IngestLayerOptions {
  /** Verify the DiffID (digest of the uncompressed tar). */
  expectedDiffID?: Digest | string;
  /** Verify the blob digest. */
  expectedDigest?: Digest | string;
  /** Verify the blob size. */
  expectedSize?: number;
  /** Media type to record; a known layer type that contradicts the bytes is corrected. */
  mediaType?: string;
  /** Refuse blobs decompressing to more than this (`ERR_DECOMPRESSION_LIMIT`; default 1 TiB). */
  maxUncompressedSize?: number;
  /** Protect the stored blob from GC until released (give one: without it a GC may take the blob before it is recorded). */
  lease?: Lease;
  /** Progress: blob bytes read so far. */
  onProgress?(bytes: number): void;
  /** What errors call the blob. Default `layer blob`. */
  name?: string;
  /**
   * Hash, scan and write the blob on a worker thread (`openOffThreadWriter`),
   * for a caller whose thread has other work: a pull reading several layers
   * from sockets. Only a content store with files has workers; others ignore it.
   */
  offThread?: boolean;
  /**
   * Called once with the path of the ingest file the blob is written into,
   * before its first byte, when it is written off-thread (`offThread`, a
   * store with files): that worker writes the bytes in order, so the file
   * holds a prefix of the blob whenever the process stops. A caller may
   * hard-link the file to keep what was written past a failure or a kill (a
   * resumable download does); it must never write to it. A rejection aborts
   * the ingest.
   */
  onIngestFile?(path: string): Promise<void> | void;
}

/** Options of {@link LayerStore.recordLayer}. */
export interface RecordLayerOptions {
  /** Protect the layer from GC until the lease is released. */
  lease?: Lease;
  /** Atomically acquire the layer for this holder as part of recording it. */
  holder?: string;
}

/** Options of {@link LayerStore.register}: those of both phases. */
export interface RegisterOptions extends IngestLayerOptions, RecordLayerOptions {}

/** Result of {@link LayerStore.gc}. */
export interface GcResult {
  removedLayers: Digest[];
  removedBlobs: Digest[];
  freedBytes: number;
}

/** Extra GC roots computed during GC (see {@link GcOptions.roots}). */
export interface ExtraRoots {
  blobs?: Iterable<Digest | string>;
  layers?: Iterable<Digest | string>;
}

/** Options of {@link LayerStore.gc}. */
export interface GcOptions {
  /** Extra roots: blobs other components reference (configs, manifests). */
  keepBlobs?: Iterable<Digest | string>;
  /** Extra roots: layers other components reference by ChainID (kept with their parents). */
  keepLayers?: Iterable<Digest | string>;
  /**
   * Extra roots computed by a function that GC calls under the store lock
   * after it read the live leases. A component that creates its objects under
   * a lease and records them before releasing the lease never loses one to a
   * concurrent GC this way, without a lock of its own.
   */
  roots?: () => ExtraRoots | Promise<ExtraRoots>;
  /** Ingests of dead processes, and any ingest older than this, are removed. Default 24 h. */
  ingestMaxAgeMs?: number;
  /**
   * Sweep only what this lease protects, and release it: what an operation
   * that failed wrote. Marking is as usual, so whatever a layer, an image
   * (given roots), another live lease or a holder references stays.
   */
  sweepLease?: Lease;
}

/** A list of root digests (or nothing). */
export type GcRoots = Iterable<Digest | string> | undefined;

/** Validate root digests (typed error on a malformed one) and collect them. */
export function resolveRoots(...lists: Array<[GcRoots, string]>): Set<Digest> {
  const out = new Set<Digest>();
  for (const [list, what] of lists) for (const d of list ?? []) out.add(checkDigest(d, what));
  return out;
}

/** A layer store: blobs plus layer records by ChainID, with holders and GC. */
export interface LayerStore {
  /** The blob store under the same root. */
  readonly content: ContentStore;
  /**
   * Read a layer blob once from `source` (tar, gzip or zstd), store it, and
   * record the layer on top of `parent`: {@link ingestLayer} then
   * {@link recordLayer}, under a lease of its own when none is given.
   */
  register(source: ByteSource, parent?: Digest | string | null, opts?: RegisterOptions): Promise<Layer & { existed: boolean }>;
  /**
   * Phase 1: stream a layer blob into the store and learn its facts (blob
   * digest and size, media type from the bytes, DiffID, tar check, dockerd's
   * size). Verified before visible. Give a lease: the blob is not a layer yet,
   * and a GC may take it until {@link recordLayer} runs.
   * @throws DigestMismatchError / SizeMismatchError; InvalidArgumentError `ERR_INVALID_TAR`; DecompressionLimitError
   */
  ingestLayer(source: ByteSource, opts?: IngestLayerOptions): Promise<LayerBlobFacts>;
  /**
   * Phase 2: record the layer whose blob {@link ingestLayer} (or a worker
   * through `content.fileWriter`) stored, on top of `parent`. The facts are
   * trusted as the caller learned them from the blob's bytes; the blob's
   * existence and size and the parent are checked.
   * @throws NotFoundError `ERR_BLOB_NOT_FOUND` / `ERR_LAYER_NOT_FOUND` (parent); SizeMismatchError
   */
  recordLayer(facts: LayerBlobFacts, parent?: Digest | string | null, opts?: RecordLayerOptions): Promise<Layer & { existed: boolean }>;
  /** A layer by ChainID. @throws NotFoundError `ERR_LAYER_NOT_FOUND` */
  get(chainID: Digest | string): Promise<Layer>;
  /** True when the layer exists. */
  has(chainID: Digest | string): Promise<boolean>;
  /** Every layer, sorted by ChainID. */
  list(): Promise<Layer[]>;
  /** Add a persistent holder reference (idempotent per holder). @throws NotFoundError `ERR_LAYER_NOT_FOUND` */
  acquire(chainID: Digest | string, holder: string): Promise<Layer>;
  /**
   * Protect an existing layer (its chain and blobs) from GC under `lease`,
   * e.g. between telling a client the store has it and the load that uses
   * it. Resolves false when there is no such layer (nothing is protected).
   * @throws FailedPreconditionError `ERR_LEASE_NOT_FOUND` (released or expired lease)
   */
  leaseLayer(chainID: Digest | string, lease: Lease): Promise<boolean>;
  /** Drop a holder reference. @throws NotFoundError `ERR_LAYER_NOT_FOUND` / `ERR_LAYER_NOT_RETAINED` */
  release(chainID: Digest | string, holder: string): Promise<void>;
  /** Holders of a layer, sorted. */
  holders(chainID: Digest | string): Promise<string[]>;
  /** The blob as stored. */
  open(chainID: Digest | string): Promise<Readable>;
  /** The uncompressed tar. */
  openUncompressed(chainID: Digest | string): Promise<Readable>;
  /** A new lease owned by this process. */
  lease(opts?: { expiresInMs?: number }): Promise<Lease>;
  /**
   * What live leases protect right now (blobs, and layers by ChainID): the
   * objects of operations still in flight, in this process or another. A
   * rule that removes records (an image prune) leaves these alone: their
   * operation has not finished recording them yet.
   */
  leased(): Promise<{ blobs: Set<Digest>; layers: Set<Digest> }>;
  /** Mark and sweep: remove layers and blobs nothing references. */
  gc(opts?: GcOptions): Promise<GcResult>;
  /**
   * True when an interrupted or killed operation left garbage that a GC would
   * collect: a lease of a process that is gone (or expired), an ingest or
   * temporary file of a dead process. Cheap (a few directory listings), so
   * ordinary writes can ask it before deciding to collect.
   */
  hasGarbage(): Promise<boolean>;
  /** Verify (and with `repair`, clean up) the store. */
  fsck(opts?: FsckOptions): Promise<FsckReport>;
  /** Release resources (no further calls). */
  close(): Promise<void>;
}

/** Kinds of problem fsck reports. */
export type FsckProblemKind =
  | "blob-corrupt" // content does not hash to its name
  | "blob-orphan" // no layer, lease or given root references it (only checked when roots are given)
  | "record-corrupt" // layer record unreadable or inconsistent
  | "record-blob-missing" // layer record's blob is not stored
  | "record-blob-mismatch" // blob size differs from the record's descriptor
  | "record-diffid-mismatch" // blob does not decompress to the record's DiffID / sizes
  | "record-not-tar" // the layer's uncompressed content is not a tar archive
  | "record-parent-missing" // parent layer record missing (or removed by this repair)
  | "ref-orphan" // holder references of a layer that does not exist
  | "lease-dead" // lease of a dead process or expired
  | "stale-ingest" // ingest of a dead process
  | "stale-temp" // temporary file of a dead process
  | "unknown-file"; // a file berth did not write

/**
 * Kinds that are garbage, not damage: what an interrupted, killed or refused
 * operation left behind. Nothing stored is wrong; the bytes are only wasted
 * until the next write (or GC, or `fsck` with `repair`) removes them.
 */
export const GARBAGE_KINDS: ReadonlySet<string> = new Set(["blob-orphan", "ref-orphan", "lease-dead", "stale-ingest", "stale-temp"]);

/** One problem found by fsck. */
export interface FsckProblem {
  kind: FsckProblemKind;
  /** The file or directory concerned. */
  path: string;
  /** The blob or layer concerned, when there is one. */
  digest?: Digest;
  message: string;
  /** True for garbage (see {@link GARBAGE_KINDS}), false for damage. */
  garbage: boolean;
  /** Bytes the garbage takes, when known. */
  bytes?: number;
  /** True when `repair` removed it. */
  repaired: boolean;
}

/** How much garbage fsck found. */
export interface GarbageSummary {
  count: number;
  /** Bytes of the garbage whose size is known (orphan blobs, stale ingests). */
  bytes: number;
}

/** Result of fsck. */
export interface FsckReport {
  /** True when no damage is left unrepaired (garbage alone leaves the store ok). */
  ok: boolean;
  problems: FsckProblem[];
  /** The garbage among the problems. */
  garbage: GarbageSummary;
  checkedBlobs: number;
  checkedLayers: number;
}

/** `ok` and the garbage summary of a list of problems. */
export function judgeProblems(problems: ReadonlyArray<Pick<FsckProblem, "garbage" | "bytes" | "repaired">>): { ok: boolean; garbage: GarbageSummary } {
  const garbage: GarbageSummary = { count: 0, bytes: 0 };
  let ok = true;
  for (const p of problems) {
    if (p.garbage) {
      garbage.count++;
      garbage.bytes += p.bytes ?? 0;
    } else if (!p.repaired) ok = false;
  }
  return { ok, garbage };
}

/** Options of fsck. */
export interface FsckOptions {
  /** Remove garbage and broken records (takes the store lock). */
  repair?: boolean;
  /**
   * Roots known to other components (configs, manifests). When given (or
   * {@link roots}), blobs referenced by no layer record, live lease or root are
   * reported as orphans (and removed with `repair`); when neither is, orphans
   * are not judged.
   */
  keepBlobs?: Iterable<Digest | string>;
  /**
   * More roots, asked for after the live leases are read (under the store
   * lock with `repair`), as {@link GcOptions.roots}: what another component
   * came to reference while the blobs were hashed (a blob committed under a
   * lease and pinned before the lease's release). Judges orphans as
   * `keepBlobs` does; give both or either.
   */
  roots?: () => ExtraRoots | Promise<ExtraRoots>;
  /** Re-hash every blob and decompress every layer (default true). */
  verifyContent?: boolean;
}

/** What the worker learnt of a whole blob: its digest and size, and the scan's facts when a scan was asked for. */
export interface WrittenBlob {
  digest: Digest;
  size: number;
  facts?: ScanFacts;
}

/** Options of {@link openOffThreadWriter}. */
export interface OffThreadWriterOptions extends WriterOptions {
  /** Also scan the blob on the worker ({@link LayerScan}: compression, DiffID, tar check); {@link OffThreadWriter.finish} gives the facts. */
  scan?: LayerScanOptions;
}

/** A {@link BlobWriter} whose `write` may return before the bytes are in the file: {@link OffThreadWriter.flush} waits for them. */
export interface OffThreadWriter extends BlobWriter {
  /** The ingest file the worker writes, in order (absent for the memory store's writer). */
  readonly path?: string;
  /**
   * Every byte is written: the blob's digest, size and (when asked for) scan
   * facts, before anything is visible; `commit` then makes it the blob.
   * Rejects with the scan's error (a corrupt gzip stream, a layer past the
   * size limit). The memory store's writer has no worker and no scan: it
   * hashes beside its writes for the digest.
   */
  finish(): Promise<WrittenBlob>;
  /**
   * Send what is gathered and wait until every byte written so far is in the
   * ingest file; then `written` counts them all. Rejects with the error that
   * stopped the writer (a failed disk write), after which it takes no more.
   */
  flush(): Promise<void>;
}
