/**
 * The narrow slice of `@berth/image-store`'s `Store` this package uses (the
 * agreed store contract). `openStore()`'s result satisfies it; so can any other
 * implementation (an in-memory store in a browser, a remote one).
 * @module
 */
import type { Readable } from "node:stream";
import type { ByteSource, Digest } from "@berth/digest";
import type { ContentReader } from "@berth/layer-store";

/** A GC lease (see `@berth/layer-store`). */
export interface ArchiveLease {
  readonly id: string;
  release(): Promise<void>;
}

/** Blob descriptor as the store records it. */
export interface ArchiveDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
}

/** A layer record (see `@berth/layer-store`). */
export interface ArchiveLayer {
  chainID: Digest;
  diffID: Digest;
  parent: Digest | null;
  size: number;
  blob: ArchiveDescriptor;
}

/** A blob writer (see `@berth/layer-store`). */
export interface ArchiveBlobWriter {
  write(chunk: Uint8Array): Promise<void>;
  readonly written: number;
  commit(expectedSize?: number, expectedDigest?: Digest | string): Promise<{ digest: Digest; size: number; existed: boolean }>;
  abort(): Promise<void>;
}

/**
 * An ingest file that another thread fills (see `@berth/layer-store`'s
 * `FileWriter`): the store fsyncs it, checks its size and commits it under
 * the digest the writer computed.
 */
export interface ArchiveFileWriter {
  readonly path: string;
  commit(digest: Digest | string, size: number, expectedDigest?: Digest | string): Promise<{ digest: Digest; size: number; existed: boolean }>;
  abort(): Promise<void>;
}

/** The content store role. */
export interface ArchiveContent {
  has(digest: Digest | string): Promise<boolean>;
  info(digest: Digest | string): Promise<{ digest: Digest; size: number }>;
  open(digest: Digest | string): Promise<Readable>;
  /**
   * Optional (both `@berth/layer-store` stores have it): with it, a save to a
   * stream copies layers through a few reused buffers (`pumpReader`).
   */
  openReader?(digest: Digest | string): Promise<ContentReader>;
  readBytes(digest: Digest | string, maxSize: number): Promise<Uint8Array>;
  writer(opts?: { lease?: ArchiveLease }): Promise<ArchiveBlobWriter>;
  /**
   * Optional (the filesystem content store has it): with it, `load` of an
   * archive file hashes and writes large entries on worker threads.
   */
  fileWriter?(opts?: { lease?: ArchiveLease }): Promise<ArchiveFileWriter>;
  put(
    bytes: Uint8Array,
    expected?: { digest?: Digest | string; size?: number },
    opts?: { lease?: ArchiveLease },
  ): Promise<{ digest: Digest; size: number; existed: boolean }>;
}

/** The layer store role. */
export interface ArchiveLayers {
  register(
    source: ByteSource,
    parent?: Digest | string | null,
    opts?: {
      expectedDiffID?: Digest | string;
      expectedDigest?: Digest | string;
      expectedSize?: number;
      mediaType?: string;
      maxUncompressedSize?: number;
      lease?: ArchiveLease;
    },
  ): Promise<ArchiveLayer & { existed: boolean }>;
  /**
   * Phase 2 of `register` (every berth layer store has it): record a layer
   * from a blob already in the content store, with the facts learned while
   * storing it, so `load` need not read the blob twice. Without it, `load`
   * re-reads the blob through `register`.
   */
  recordLayer?(
    facts: {
      blob: { mediaType: string; digest: Digest; size: number };
      compression: "none" | "gzip" | "zstd";
      diffID: Digest;
      uncompressedSize: number;
      contentSize: number;
    },
    parent?: Digest | string | null,
    opts?: { lease?: ArchiveLease },
  ): Promise<ArchiveLayer & { existed: boolean }>;
  get(chainID: Digest | string): Promise<ArchiveLayer>;
  has(chainID: Digest | string): Promise<boolean>;
  open(chainID: Digest | string): Promise<Readable>;
  openUncompressed(chainID: Digest | string): Promise<Readable>;
}

/** An image as the store returns it. */
export interface ArchiveImage {
  id: Digest;
  configBytes: Uint8Array;
  chainID: Digest | null;
  manifestDigest: Digest;
}

/** The image store role. */
export interface ArchiveImages {
  create(configBytes: Uint8Array, opts?: { lease?: ArchiveLease }): Promise<ArchiveImage>;
  /** Optional: create several images, validating all before writing any (the filesystem store has it). */
  createMany?(configs: Iterable<Uint8Array>, opts?: { lease?: ArchiveLease }): Promise<Digest[]>;
  get(id: Digest | string): Promise<ArchiveImage>;
  delete(id: Digest | string): Promise<unknown>;
  setParent(id: Digest | string, parent: Digest | string): Promise<void>;
  manifest(id: Digest | string): Promise<{ digest: Digest; bytes: Uint8Array }>;
}

/** The reference (tag) store role. */
export interface ArchiveReferences {
  tag(ref: string, id: Digest | string, opts?: { force?: boolean }): Promise<{ ref: string; previous?: Digest }>;
  /** Many tags as one write, all refused when one is (a load of thousands of tagged images writes its tags once). */
  tagMany?(steps: ReadonlyArray<{ ref: string; id: Digest | string; force?: boolean }>): Promise<Array<{ ref: string; previous?: Digest }>>;
  untag(ref: string): Promise<Digest>;
  resolve(nameOrIdOrPrefix: string): Promise<Digest>;
  referencesOf(id: Digest | string): Promise<string[]>;
}

/** What `load` and `save` need from a store: `openStore()` from `@berth/image-store` returns one. */
export interface ArchiveStore {
  content: ArchiveContent;
  layers: ArchiveLayers;
  images: ArchiveImages;
  references: ArchiveReferences;
  lease(): Promise<ArchiveLease>;
  /** Sweep what only `sweepLease` protects and release it (a failed load's writes); without it, a failed load only releases its lease. */
  gc?(opts: { sweepLease: ArchiveLease }): Promise<unknown>;
}
