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
import { type ByteSource, type Digest, DigestMismatchError } from "@berth/digest";
import { layerMediaType } from "@berth/oci";
import { checkSize } from "./content-common.js";
import { checkDigest } from "./paths.js";
import { LayerScan } from "./scan.js";
import { claimSource } from "./source.js";
import type { ContentStore, IngestLayerOptions, LayerBlobFacts } from "./types.js";

const DEFAULT_MAX_UNCOMPRESSED = 2 ** 40;

/** Check an {@link IngestLayerOptions} before a byte is read. */
export function checkIngestOptions(opts: IngestLayerOptions): void {
  if (opts.expectedDiffID !== undefined) checkDigest(opts.expectedDiffID, "expected DiffID");
  if (opts.expectedDigest !== undefined) checkDigest(opts.expectedDigest, "expected digest");
  if (opts.expectedSize !== undefined) checkSize(opts.expectedSize);
  if (opts.maxUncompressedSize !== undefined) checkSize(opts.maxUncompressedSize, "maxUncompressedSize");
  if (opts.mediaType !== undefined) layerMediaType("none", opts.mediaType);
}

/**
 * Stream a layer blob (tar, gzip or zstd) from `source` into `content` and
 * learn its facts. Verified before visible: expected size, digest and DiffID,
 * and the content must be a tar (`ERR_INVALID_TAR`); on any failure the
 * ingest is discarded and the source released.
 */
export async function ingestLayerBlob(content: ContentStore, source: ByteSource, opts: IngestLayerOptions = {}): Promise<LayerBlobFacts> {
  checkIngestOptions(opts);
  const expDiff = opts.expectedDiffID === undefined ? undefined : checkDigest(opts.expectedDiffID, "expected DiffID");
  const input = claimSource(source);
  const writer = await content.writer(opts.lease ? { lease: opts.lease } : {}).catch((err: unknown) => {
    input.release();
    throw err;
  });
  const scan = new LayerScan({ name: opts.name ?? "layer blob", maxUncompressedSize: opts.maxUncompressedSize ?? DEFAULT_MAX_UNCOMPRESSED });
  try {
    let read = 0;
    for await (const chunk of input) {
      await Promise.all([writer.write(chunk), scan.push(chunk)]);
      read += chunk.length;
      opts.onProgress?.(read);
    }
    const facts = await scan.finish();
    if (facts.notTar) throw facts.notTar;
    if (expDiff !== undefined && facts.diffID !== undefined && facts.diffID !== expDiff) throw diffMismatch(expDiff, facts.diffID);
    // an uncompressed blob's DiffID is its digest: an expected digest other than the expected DiffID
    // means one of the two does not hold (the commit checks the digest, so it is the DiffID that differs)
    if (expDiff !== undefined && facts.compression === "none" && opts.expectedDigest !== undefined) {
      const expDigest = checkDigest(opts.expectedDigest, "expected digest");
      if (expDigest !== expDiff) throw diffMismatch(expDiff, expDigest);
    }
    // an uncompressed blob's DiffID is its digest: the commit verifies it
    const expectedDigest = opts.expectedDigest ?? (facts.compression === "none" ? expDiff : undefined);
    let committed: { digest: Digest; size: number };
    try {
      committed = await writer.commit(opts.expectedSize, expectedDigest);
    } catch (err) {
      // the expected digest was the expected DiffID: say so
      if (expDiff !== undefined && opts.expectedDigest === undefined && err instanceof DigestMismatchError) throw diffMismatch(expDiff, String(err.details?.actual ?? ""));
      throw err;
    }
    return {
      blob: { mediaType: layerMediaType(facts.compression, opts.mediaType), digest: committed.digest, size: committed.size },
      compression: facts.compression,
      diffID: facts.diffID ?? committed.digest,
      uncompressedSize: facts.uncompressedSize,
      contentSize: facts.contentSize ?? 0,
    };
  } catch (err) {
    scan.abort();
    await writer.abort().catch(() => {});
    throw err;
  }
}

function diffMismatch(expected: Digest, actual: string): DigestMismatchError {
  return new DigestMismatchError(`layer DiffID: expected ${expected}, got ${actual}`, { details: { kind: "diffID", expected, actual } });
}
