/**
 * Reading an archive's tar entries into records, in one pass.
 *
 * Every regular entry is classified by name and size: JSON documents
 * (`manifest.json`, `index.json`, `repositories`, `oci-layout`) and small
 * entries (≤ 1 MiB, within the memory budget) are kept in memory; larger ones
 * are written to the content store as they stream ({@link ingestToStore}) or,
 * from an archive file, by worker threads ({@link ingestOnWorker}). Links are
 * recorded and must all land on an entry of the archive. Wrapped in
 * {@link ArchiveEntries}, the records are what planning reads documents from.
 * @module
 */
import { type BerthError, type Compression, type Digest, isSha256Digest, sha256 } from "@berth/digest";
import { digestMismatch, duplicateEntry, invalidBlobPath, invalidManifest, jsonTooLarge, notInArchive, unsafeLink } from "./errors.js";
import { type BlobSink, ingestOnWorker, ingestToStore, type WorkerIngest } from "./ingest.js";
import type { LoadProgressTracker } from "./progress.js";
import { type ArchiveSourceInfo, decompressArchive } from "./source.js";
import type { ArchiveContent } from "./store.js";
import { normalizeEntryName, readTar, resolveLinkTarget } from "./tar.js";

/** Largest entry kept in memory (documents aside). */
const SMALL_ENTRY = 1 << 20;
/** Background commits (fsync + rename) in flight at once. */
const MAX_COMMITS = 4;
const META_NAMES = new Set(["manifest.json", "index.json", "repositories", "oci-layout"]);
const BLOB_RE = /^blobs\/sha256\/([0-9a-f]{64})$/;

/** A regular file of the archive: in memory, or in the content store. */
export interface FileEntry {
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
/** A symlink or hardlink, its target resolved inside the archive. */
export interface LinkEntry {
  kind: "link";
  name: string;
  rawTarget: string;
  target: string;
}
/** A directory or another entry type that is recorded but holds nothing. */
export interface OtherEntry {
  kind: "dir" | "other";
  name: string;
}
/** One entry of the archive. */
export type Entry = FileEntry | LinkEntry | OtherEntry;

/** Options of {@link readEntries}. */
export interface ReadEntriesOptions {
  /** The archive's bytes (gzip'd or not). */
  input: AsyncIterable<Uint8Array>;
  /** Filled in as the archive is read: compression, bytes read. */
  info: ArchiveSourceInfo;
  maxJson: number;
  maxLayer: number;
  maxArchiveSize?: number;
  memoryBudget: number;
  /** Where large entries are written. */
  sink: BlobSink;
  progress: LoadProgressTracker;
  /** Worker threads for an archive file (used when `sink` has `fileWriter`). */
  workers?: WorkerIngest;
  /** Stops the read at the next entry. */
  signal?: AbortSignal;
}

/**
 * Read every entry of the archive. On failure, the workers are stopped and
 * background commits settle before the error is thrown.
 */
export async function readEntries(opts: ReadEntriesOptions): Promise<Map<string, Entry>> {
  const ordered: Array<Entry | Promise<FileEntry>> = [];
  try {
    return await readInto(ordered, opts);
  } catch (err) {
    opts.workers?.cancel(err);
    await Promise.allSettled(ordered);
    throw err;
  }
}

async function readInto(ordered: Array<Entry | Promise<FileEntry>>, opts: ReadEntriesOptions): Promise<Map<string, Entry>> {
  const { info, maxJson, sink, progress } = opts;
  const committing = new Set<Promise<FileEntry>>();
  const workers = opts.workers && sink.fileWriter ? { pool: opts.workers, fileWriter: sink.fileWriter.bind(sink) } : undefined;
  let memUsed = 0;
  const chunks = decompressArchive(opts.input, info, opts.maxArchiveSize);
  // Bodies the workers read are not read here (only in a plain tar are positions those of the file).
  const skipBody = workers
    ? (to: number) => {
        if (info.compression === "none") workers.pool.file.skipTo(to);
      }
    : undefined;
  for await (const e of readTar(chunks, skipBody ? { skipBody } : {})) {
    progress.report(e.name);
    opts.signal?.throwIfAborted();
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
      } else if (e.size <= SMALL_ENTRY && memUsed + e.size <= opts.memoryBudget) {
        const bytes = await collect(e.body(), e.size);
        memUsed += e.size;
        const digest = sha256(bytes);
        if (expected && digest !== expected) throw digestMismatch(`archive entry ${e.name}`, expected, digest);
        rec = { kind: "file", name: e.name, size: e.size, digest, bytes, stored: false };
      } else {
        // On a worker (its body is not read here), or streamed now; either
        // way committed (fsync, rename) in the background while the next
        // entries stream, a few at a time.
        const entry = { name: e.name, size: e.size, expected };
        if (workers && info.compression === "none" && e.size >= workers.pool.minEntrySize) {
          // Queued jobs cost nothing (no open file) until a worker takes them.
          const p = ingestOnWorker({ ...entry, offset: e.dataOffset }, { workers: workers.pool, fileWriter: workers.fileWriter, maxLayer: opts.maxLayer, progress });
          p.catch(() => {});
          ordered.push(p);
          continue;
        }
        const p = (await ingestToStore(entry, e.body(), { sink, maxLayer: opts.maxLayer })).commit;
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
  const entries = new Map<string, Entry>();
  for (const x of ordered) {
    const rec = await x;
    const prev = entries.get(rec.name);
    if (prev === undefined) entries.set(rec.name, rec);
    else if (!sameEntry(prev, rec)) throw duplicateEntry(rec.name);
  }
  progress.report("");
  // Every link must land on an entry, never outside (checked at read) or nowhere.
  const archive = new ArchiveEntries(entries);
  for (const e of entries.values()) if (e.kind === "link") archive.follow(e.name, e.name);
  return entries;
}

/**
 * The entries of an archive by name, and the documents in them: what
 * planning reads. Entries held in memory need nothing else; a stored entry is
 * read from `content` (no `content`: only in-memory archives, as in tests).
 */
export class ArchiveEntries {
  /**
   * @param entries records by normalized name
   * @param opts `maxJson`: largest document read (`ERR_JSON_TOO_LARGE`); `content`: where stored entries are
   */
  constructor(
    readonly entries: ReadonlyMap<string, Entry>,
    private readonly opts: { maxJson?: number; content?: Pick<ArchiveContent, "readBytes"> } = {},
  ) {}

  /** Whether the archive has an entry of this (normalized) name. */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The file at `path` (links followed); `ERR_NOT_IN_ARCHIVE` / `ERR_UNSAFE_PATH` / `ERR_UNSAFE_LINK` when there is none. */
  file(path: string, referencedBy: string): FileEntry {
    const f = this.follow(normalizeEntryName(path), referencedBy);
    if (!f) throw notInArchive(JSON.stringify(path), referencedBy);
    return f;
  }

  /** The blob `blobs/sha256/<hex>` of a descriptor's digest; `ERR_INVALID_MANIFEST` for a digest that is not sha256. */
  blob(digest: string, referencedBy: string): FileEntry {
    if (!isSha256Digest(digest)) throw invalidManifest(referencedBy, `unsupported or invalid digest ${JSON.stringify(digest)}`);
    return this.file(`blobs/sha256/${digest.slice(7)}`, referencedBy);
  }

  /** The bytes of a document entry, within the JSON size limit. */
  async read(f: FileEntry): Promise<Uint8Array> {
    const max = this.opts.maxJson ?? Number.POSITIVE_INFINITY;
    if (f.size > max) throw jsonTooLarge(f.name, f.size, max);
    if (f.bytes) return f.bytes;
    if (!this.opts.content) throw new Error(`archive entry ${JSON.stringify(f.name)} is in the content store, and none was given to read it from`);
    return this.opts.content.readBytes(f.digest, max);
  }

  /** The names and bytes of the regular files (not links) whose name matches, in name order, within the JSON size limit. */
  async files(match: (name: string) => boolean): Promise<Array<{ name: string; bytes: Uint8Array }>> {
    const out: Array<{ name: string; bytes: Uint8Array }> = [];
    for (const e of this.entries.values()) if (e.kind === "file" && match(e.name)) out.push({ name: e.name, bytes: await this.read(e) });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Follow links from `name` to a file entry; `undefined` if `name` is not an entry. */
  follow(name: string, referencedBy: string): FileEntry | undefined {
    let cur = this.entries.get(name);
    for (let hops = 0; cur !== undefined && cur.kind === "link"; hops++) {
      if (hops > 32) throw unsafeLink(cur.name, cur.rawTarget, "too many levels of links");
      const next = this.entries.get(cur.target);
      if (next === undefined) throw unsafeLink(cur.name, cur.rawTarget, `points to ${cur.target}, which is not an entry of the archive (referenced by ${referencedBy})`);
      cur = next;
    }
    if (cur === undefined) return undefined;
    if (cur.kind !== "file") throw notInArchive(`${JSON.stringify(name)} (a ${cur.kind}, not a file)`, referencedBy);
    return cur;
  }
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "file" && b.kind === "file") return a.digest === b.digest && a.size === b.size;
  if (a.kind === "link" && b.kind === "link") return a.target === b.target;
  return true;
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
