/**
 * Phase 1 of registering a layer, written once for every store over its
 * content-store roles: stream a blob into an ingest (hashed while written),
 * scan it ({@link LayerScan}: compression, DiffID, tar check, dockerd's size),
 * verify what the caller expects, and commit it — or abort, leaving nothing
 * visible; the source is taken over before the first `await` (see
 * `source.ts`). Phase 2 (`recordLayer`) records a layer on a parent from the
 * facts.
 * @module
 */
import { type ByteSource, coalesceChunks, type Digest, DigestMismatchError } from "@berth/digest";
import { layerMediaType } from "@berth/oci";
import { checkSize, verifyExpected } from "./content-common.js";
import { checkDigest } from "./paths.js";
import { LayerScan, type LayerScanOptions, type ScanFacts } from "./scan.js";
import { claimSource } from "./source.js";
import type { BlobInfo, ContentStore, IngestLayerOptions, LayerBlobFacts, OffThreadWriter, OffThreadWriterOptions } from "./types.js";

/** Bytes gathered before each write and scan of a streamed blob (chunks at least this large pass as they are). */
const INGEST_PIECE = 512 << 10;

const DEFAULT_MAX_UNCOMPRESSED = 2 ** 40;

/** Check an {@link IngestLayerOptions} before a byte is read. */
export function checkIngestOptions(opts: IngestLayerOptions): void {
  if (opts.expectedDiffID !== undefined) checkDigest(opts.expectedDiffID, "expected DiffID");
  if (opts.expectedDigest !== undefined) checkDigest(opts.expectedDigest, "expected digest");
  if (opts.expectedSize !== undefined) checkSize(opts.expectedSize);
  if (opts.maxUncompressedSize !== undefined) checkSize(opts.maxUncompressedSize, "maxUncompressedSize");
  if (opts.mediaType !== undefined) layerMediaType("none", opts.mediaType);
}

/** How a store with files opens its off-thread writers (`openOffThreadWriter`; the memory store has none). */
export type OpenOffThreadWriter = (content: ContentStore, opts: OffThreadWriterOptions) => Promise<OffThreadWriter>;

/**
 * Stream a layer blob (tar, gzip or zstd) from `source` into `content` and
 * learn its facts. Verified before visible: expected size, digest and DiffID,
 * and the content must be a tar (`ERR_INVALID_TAR`); on any failure the
 * ingest is discarded and the source released. When `expectedDigest` names a
 * blob the store holds already (pushed to the registry face, pulled for
 * another image), the source is let go (after the one chunk its claim asked
 * for) and the stored copy is scanned instead: nothing is written or fetched
 * twice. With `opts.offThread` and `offThread` given (the filesystem store
 * passes it), the blob is hashed, scanned and written on a worker thread.
 */
export async function ingestLayerBlob(
  content: ContentStore,
  source: ByteSource,
  opts: IngestLayerOptions = {},
  offThread?: OpenOffThreadWriter,
): Promise<LayerBlobFacts> {
  checkIngestOptions(opts);
  const expDiff = opts.expectedDiffID === undefined ? undefined : checkDigest(opts.expectedDiffID, "expected DiffID");
  const expDigest = opts.expectedDigest === undefined ? undefined : checkDigest(opts.expectedDigest, "expected digest");
  const input = claimSource(source);
  const held = expDigest === undefined ? undefined : await content.hold(expDigest, opts.lease ? { lease: opts.lease } : {}).catch((err: unknown) => {
    input.release();
    throw err;
  });
  if (held) {
    input.release();
    verifyExpected("layer blob", held, opts.expectedSize, expDigest);
    return scanStored(content, held, opts, expDiff);
  }
  const writer = await scanningWriter(content, opts, opts.offThread ? offThread : undefined).catch((err: unknown) => {
    input.release();
    throw err;
  });
  try {
    if (writer.path !== undefined) await opts.onIngestFile?.(writer.path);
    let read = 0;
    // pipes and sockets deliver 64 KiB at a time, and each piece costs a write
    // and a scan round trip whatever its size: small chunks are gathered first
    // (`berth import -` of a 512 MiB tar from a pipe: 1.34–1.41 → 1.20–1.22 s),
    // unless the writer gathers them itself (the off-thread writer's pieces)
    for await (const chunk of writer.gathers ? input : coalesceChunks(input, INGEST_PIECE)) {
      await writer.write(chunk);
      read += chunk.length;
      opts.onProgress?.(read);
    }
    const facts = await writer.facts();
    checkScan(facts, expDiff, expDigest);
    // an uncompressed blob's DiffID is its digest: the commit verifies it
    const expectedDigest = expDigest ?? (facts.compression === "none" ? expDiff : undefined);
    let committed: { digest: Digest; size: number };
    try {
      committed = await writer.commit(opts.expectedSize, expectedDigest);
    } catch (err) {
      // the expected digest was the expected DiffID: say so
      if (expDiff !== undefined && expDigest === undefined && err instanceof DigestMismatchError) throw diffMismatch(expDiff, String(err.details?.actual ?? ""));
      throw err;
    }
    return blobFacts(facts, committed, opts);
  } catch (err) {
    await writer.abort().catch(() => {});
    throw err;
  }
}

/** A content writer that also scans what it writes: here, or with `offThread` on a worker. */
interface ScanningWriter {
  /** True when `write` gathers small chunks into pieces of its own. */
  gathers: boolean;
  /** The file written in order (the off-thread writer's), for `onIngestFile`. */
  path?: string;
  write(chunk: Uint8Array): Promise<void>;
  /** Every chunk was written: the scan's facts. */
  facts(): Promise<ScanFacts>;
  commit(expectedSize?: number, expectedDigest?: Digest): Promise<{ digest: Digest; size: number }>;
  abort(): Promise<void>;
}

async function scanningWriter(content: ContentStore, opts: IngestLayerOptions, offThread: OpenOffThreadWriter | undefined): Promise<ScanningWriter> {
  const writerOpts = opts.lease ? { lease: opts.lease } : {};
  if (offThread && content.fileWriter) {
    const w = await offThread(content, { ...writerOpts, scan: scanOptions(opts) });
    return {
      gathers: true,
      ...(w.path !== undefined ? { path: w.path } : {}),
      write: (chunk) => w.write(chunk),
      facts: async () => (await w.finish()).facts!,
      commit: (size, digest) => w.commit(size, digest),
      abort: () => w.abort(),
    };
  }
  const w = await content.writer(writerOpts);
  const scan = newScan(opts);
  return {
    gathers: false,
    write: async (chunk) => {
      await Promise.all([w.write(chunk), scan.push(chunk)]);
    },
    facts: () => scan.finish(),
    commit: (size, digest) => w.commit(size, digest),
    abort: async () => {
      scan.abort();
      await w.abort();
    },
  };
}

/** The facts of a blob the content store holds (`held`), read back from it. */
async function scanStored(content: ContentStore, held: BlobInfo, opts: IngestLayerOptions, expDiff: Digest | undefined): Promise<LayerBlobFacts> {
  const scan = newScan(opts);
  try {
    let read = 0;
    for await (const chunk of await content.open(held.digest)) {
      await scan.push(chunk);
      read += chunk.length;
      opts.onProgress?.(read);
    }
    const facts = await scan.finish();
    checkScan(facts, expDiff, held.digest);
    return blobFacts(facts, held, opts);
  } catch (err) {
    scan.abort();
    throw err;
  }
}

function scanOptions(opts: IngestLayerOptions): LayerScanOptions {
  return { name: opts.name ?? "layer blob", maxUncompressedSize: opts.maxUncompressedSize ?? DEFAULT_MAX_UNCOMPRESSED };
}

function newScan(opts: IngestLayerOptions): LayerScan {
  return new LayerScan(scanOptions(opts));
}

/** What a scan must show before its blob may become a layer: a tar, and the DiffID expected. */
function checkScan(facts: ScanFacts, expDiff: Digest | undefined, digest: Digest | undefined): void {
  if (facts.notTar) throw facts.notTar;
  if (expDiff === undefined) return;
  if (facts.diffID !== undefined && facts.diffID !== expDiff) throw diffMismatch(expDiff, facts.diffID);
  // an uncompressed blob's DiffID is its digest: a digest other than the expected DiffID
  // means one of the two does not hold (the digest is checked, so it is the DiffID that differs)
  if (facts.compression === "none" && digest !== undefined && digest !== expDiff) throw diffMismatch(expDiff, digest);
}

function blobFacts(facts: ScanFacts, blob: { digest: Digest; size: number }, opts: IngestLayerOptions): LayerBlobFacts {
  return {
    blob: { mediaType: layerMediaType(facts.compression, opts.mediaType), digest: blob.digest, size: blob.size },
    compression: facts.compression,
    diffID: facts.diffID ?? blob.digest,
    uncompressedSize: facts.uncompressedSize,
    contentSize: facts.contentSize ?? 0,
  };
}

function diffMismatch(expected: Digest, actual: string): DigestMismatchError {
  return new DigestMismatchError(`layer DiffID: expected ${expected}, got ${actual}`, { details: { kind: "diffID", expected, actual } });
}
