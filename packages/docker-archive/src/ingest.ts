/**
 * Writing one large archive entry into the content store, on this thread
 * ({@link ingestToStore}) or on a worker thread ({@link ingestOnWorker}),
 * and the layer facts (compression, DiffID, tar check) gathered on the way.
 *
 * Both hash while writing and commit with the expected size and, for a
 * `blobs/sha256/<hex>` entry, the digest its name promises; a failed entry
 * leaves no ingest file behind. Where the writers come from is the caller's
 * {@link BlobSink} (the load's transaction, which holds the lease). Once a
 * plan names the layers, {@link verifyLayers} checks each against its DiffID.
 * @module
 */
import { type Digest, hasCode } from "@berth/digest";
import type { FileEntry } from "./entries.js";
import { digestMismatch, layerNotTar } from "./errors.js";
import { IngestPool } from "./pool.js";
import type { LoadProgressTracker } from "./progress.js";
import { LayerScan, type ScanFacts } from "@berth/layer-store/scan";
import type { FileSource } from "./source.js";
import type { ArchiveBlobWriter, ArchiveContent, ArchiveFileWriter } from "./store.js";

/** Bytes of writes in flight per streamed entry (reading, hashing and disk writes overlap). */
const WRITE_AHEAD = 32 << 20;

/** Where ingested entries are written: content-store writers under the load's lease. */
export interface BlobSink {
  writer(): Promise<ArchiveBlobWriter>;
  /** Present when the content store can take files filled by other threads. */
  fileWriter?(): Promise<ArchiveFileWriter>;
}

/** One entry to ingest. */
export interface IngestEntry {
  name: string;
  size: number;
  /** Digest promised by a `blobs/sha256/<hex>` name. */
  expected: Digest | undefined;
}

/**
 * Stream `body` into a writer from `sink`, scanning it as it goes. Resolves
 * once the bytes are written; `commit` (fsync, verify, rename) then runs in
 * the background so the next entry can stream meanwhile.
 */
export async function ingestToStore(
  entry: IngestEntry,
  body: AsyncIterable<Uint8Array>,
  opts: { sink: BlobSink; maxLayer: number },
): Promise<{ commit: Promise<FileEntry> }> {
  const { name, size, expected } = entry;
  const w = await opts.sink.writer();
  const scan = new LayerScan({ name: `archive entry ${name}`, maxUncompressedSize: opts.maxLayer });
  // The writer hashes each chunk synchronously on write() and writes it at
  // its own offset; keep up to WRITE_AHEAD bytes in flight.
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

/** Worker threads for the large entries of an archive file, started on first use. */
export class WorkerIngest {
  private pool: IngestPool | undefined;

  /**
   * @param file the archive file (the workers read entries at their offsets)
   * @param threads most workers at once
   * @param minEntrySize smallest entry handed to a worker
   */
  constructor(
    readonly file: FileSource,
    private readonly threads: number,
    readonly minEntrySize: number,
  ) {}

  /** Start the workers now (while this thread reads the archive's first entries). */
  warm(): void {
    this.pool ??= new IngestPool(this.threads);
    this.pool.warm();
  }

  /** The pool, started if need be. */
  get running(): IngestPool {
    this.pool ??= new IngestPool(this.threads);
    return this.pool;
  }

  /** Stop the workers' jobs with `reason`. */
  cancel(reason: unknown): void {
    this.pool?.cancel(reason);
  }

  /** End the workers. */
  async close(): Promise<void> {
    await this.pool?.close();
  }
}

/** Read, hash, scan and write an entry at `offset` of the archive file on a worker thread; commit it here. */
export async function ingestOnWorker(
  entry: IngestEntry & { offset: number },
  opts: { workers: WorkerIngest; fileWriter: () => Promise<ArchiveFileWriter>; maxLayer: number; progress: LoadProgressTracker },
): Promise<FileEntry> {
  const { name, size, expected, offset } = entry;
  let fw: ArchiveFileWriter | undefined;
  let result: FileEntry;
  const done = opts.progress.pendingRange({ start: offset, end: offset + size });
  try {
    const out = await opts.workers.running.run({ file: opts.workers.file.path, offset, size, name, maxLayer: opts.maxLayer }, async () => {
      fw = await opts.fileWriter();
      return fw.path;
    });
    const committed = await fw!.commit(out.digest, size, expected).catch((err: unknown) => {
      throw blobMismatch(err, name, expected);
    });
    result = storedEntry(name, committed.digest, size, out.facts);
  } catch (err) {
    await fw?.abort().catch(() => {});
    throw err;
  } finally {
    done();
  }
  opts.progress.report(name);
  return result;
}

/**
 * Give an entry held in memory (or stored without a scan) the scan a streamed
 * one got on its way in: compression, DiffID, size, whether it is a tar.
 */
export async function scanEntry(f: FileEntry, opts: { content: Pick<ArchiveContent, "open">; maxLayer: number }): Promise<FileEntry> {
  if (f.diffID !== undefined) return f;
  const scan = new LayerScan({ name: `archive entry ${f.name}`, maxUncompressedSize: opts.maxLayer });
  try {
    for await (const chunk of f.bytes ? [f.bytes] : await opts.content.open(f.digest)) await scan.push(chunk as Uint8Array);
  } catch (err) {
    scan.abort();
    throw err;
  }
  Object.assign(f, layerFields(f.digest, await scan.finish()));
  return f;
}

/**
 * Check every layer reference of a plan: the entry's DiffID is the one the
 * config lists (`ERR_DIGEST_MISMATCH`) and its content is a tar
 * (`ERR_INVALID_TAR`). Entries held in memory are scanned here.
 */
export async function verifyLayers(
  checks: Iterable<{ layer: FileEntry; diffID: Digest; what: string }>,
  opts: { content: Pick<ArchiveContent, "open">; maxLayer: number },
): Promise<void> {
  for (const c of checks) {
    const f = await scanEntry(c.layer, opts);
    if (f.diffID !== c.diffID) throw digestMismatch(`DiffID of ${c.what}`, c.diffID, f.diffID!);
    if (f.notTar) throw layerNotTar(c.what, f.notTar);
  }
}

/** A blob whose digest is not the one its `blobs/sha256/<hex>` name promised: `ERR_DIGEST_MISMATCH` naming the entry. */
function blobMismatch(err: unknown, name: string, expected: Digest | undefined): unknown {
  if (!hasCode(err, "ERR_DIGEST_MISMATCH") || !expected) return err;
  const actual = (err as { details?: { actual?: string } }).details?.actual;
  return digestMismatch(`archive entry ${name}`, expected, String(actual ?? "different content"));
}

/** An entry's layer fields from its scan (an uncompressed blob's DiffID is its digest). */
function layerFields(digest: Digest, facts: ScanFacts): Pick<FileEntry, "compression" | "diffID" | "uncompressedSize" | "notTar" | "contentSize"> {
  const { diffID, ...rest } = facts;
  return { ...rest, diffID: diffID ?? digest };
}

/** The record of an entry committed to the content store. */
function storedEntry(name: string, digest: Digest, size: number, facts: ScanFacts): FileEntry {
  return { kind: "file", name, size, digest, stored: true, ...layerFields(digest, facts) };
}
