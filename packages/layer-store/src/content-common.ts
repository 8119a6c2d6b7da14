import { type Digest, DigestMismatchError, InvalidArgumentError, NotFoundError, SizeMismatchError } from "@berth/digest";
import { LayerStoreErrorCode } from "./errors.js";

/** Check an expected size argument. */
export function checkSize(size: unknown, what = "expected size"): number {
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidArgumentError(`invalid ${what} ${String(size)}`, { code: LayerStoreErrorCode.INVALID_SIZE });
  }
  return size;
}

/** Compare an ingest's digest and size with what the caller expected. */
export function verifyExpected(
  what: string,
  actual: { digest: Digest; size: number },
  expectedSize: number | undefined,
  expectedDigest: Digest | undefined,
): void {
  if (expectedSize !== undefined && actual.size !== expectedSize) {
    throw new SizeMismatchError(`${what}: expected ${expectedSize} bytes, got ${actual.size}`, {
      details: { expected: expectedSize, actual: actual.size, digest: actual.digest },
    });
  }
  if (expectedDigest !== undefined && actual.digest !== expectedDigest) {
    throw new DigestMismatchError(`${what}: expected ${expectedDigest}, got ${actual.digest}`, {
      details: { expected: expectedDigest, actual: actual.digest },
    });
  }
}

/** NotFoundError for a blob (`ERR_BLOB_NOT_FOUND`). */
export function blobNotFound(d: Digest): NotFoundError {
  return new NotFoundError(`blob ${d}: not found`, { code: LayerStoreErrorCode.BLOB_NOT_FOUND, details: { digest: d } });
}
