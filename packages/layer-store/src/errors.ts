/**
 * The stable codes of the errors `@berth/layer-store` throws, in one place.
 * Callers branch on `err.code` (see README "Error codes"), never on the text.
 * No file system here: the in-memory store imports this module.
 * @module
 */
import { type Digest, NotFoundError } from "@berth/digest";

/**
 * Error codes of the layer store. The errors are `@berth/digest` classes; the
 * codes marked "digest" come from that package's classes (the value is theirs)
 * and are listed because the layer store surfaces them as part of its contract.
 */
export const LayerStoreErrorCode = {
  /** digest: a digest argument is malformed or path-like (InvalidArgumentError). */
  DIGEST_FORMAT: "ERR_DIGEST_FORMAT",
  /** digest: a digest's hex part has the wrong length (InvalidArgumentError). */
  DIGEST_LENGTH: "ERR_DIGEST_LENGTH",
  /** digest: a digest names an algorithm other than sha256 (InvalidArgumentError). */
  DIGEST_UNSUPPORTED: "ERR_DIGEST_UNSUPPORTED",
  /** digest: blob digest or DiffID differs from the expected one (DigestMismatchError). */
  DIGEST_MISMATCH: "ERR_DIGEST_MISMATCH",
  /** digest: blob size differs from the expected one (SizeMismatchError). */
  SIZE_MISMATCH: "ERR_SIZE_MISMATCH",
  /** digest: the layer decompresses to more than `maxUncompressedSize` (DecompressionLimitError). */
  DECOMPRESSION_LIMIT: "ERR_DECOMPRESSION_LIMIT",
  /** digest: invalid gzip/zstd data (CorruptDataError). */
  CORRUPT_DATA: "ERR_CORRUPT_DATA",
  /** `info`/`open`/`readBytes` of a blob that is not stored (NotFoundError). */
  BLOB_NOT_FOUND: "ERR_BLOB_NOT_FOUND",
  /** Unknown ChainID, or a missing parent in `register` (NotFoundError). */
  LAYER_NOT_FOUND: "ERR_LAYER_NOT_FOUND",
  /** `release` by a holder that does not hold the layer (NotFoundError). */
  LAYER_NOT_RETAINED: "ERR_LAYER_NOT_RETAINED",
  /** The uncompressed layer is not a tar archive (DataIntegrityError; `details.offset`). */
  INVALID_TAR: "ERR_INVALID_TAR",
  /** `readBytes` of a blob larger than `maxSize` (FailedPreconditionError). */
  BLOB_TOO_LARGE: "ERR_BLOB_TOO_LARGE",
  /** Writing to or committing a writer that was committed or aborted (FailedPreconditionError). */
  INGEST_CLOSED: "ERR_INGEST_CLOSED",
  /** Using a lease that was released or expired (FailedPreconditionError). */
  LEASE_NOT_FOUND: "ERR_LEASE_NOT_FOUND",
  /** Malformed lease id (InvalidArgumentError). */
  INVALID_LEASE: "ERR_INVALID_LEASE",
  /** Holder name empty or longer than 180 bytes (InvalidArgumentError). */
  INVALID_HOLDER: "ERR_INVALID_HOLDER",
  /** Expected size that is not a non-negative safe integer (InvalidArgumentError). */
  INVALID_SIZE: "ERR_INVALID_SIZE",
  /** `openLayerStore` without a root path (InvalidArgumentError). */
  INVALID_ROOT: "ERR_INVALID_ROOT",
  /** Lock name that is not a plain file name (InvalidArgumentError). */
  INVALID_LOCK_NAME: "ERR_INVALID_LOCK_NAME",
  /** A layer record on disk is unreadable or inconsistent (DataIntegrityError). */
  LAYER_RECORD_CORRUPT: "ERR_LAYER_RECORD_CORRUPT",
  /** A byte source taken over by `claimSource` iterated a second time, or after it was released (FailedPreconditionError). */
  SOURCE_ALREADY_READ: "ERR_SOURCE_ALREADY_READ",
  /** `pumpReader`'s Writable closed or failed before the copy was complete (UnavailableError). */
  OUTPUT_CLOSED: "ERR_OUTPUT_CLOSED",
  /** A blob ended before the bytes `pumpReader` was asked for (DataIntegrityError). */
  BLOB_TRUNCATED: "ERR_BLOB_TRUNCATED",
  /** The store lock was not acquired in time (UnavailableError). */
  LOCK_TIMEOUT: "ERR_LOCK_TIMEOUT",
} as const;

/** One of the {@link LayerStoreErrorCode} values. */
export type LayerStoreErrorCodeValue = (typeof LayerStoreErrorCode)[keyof typeof LayerStoreErrorCode];

/** A layer (or, with `what`, a parent layer) that is not in the store: `ERR_LAYER_NOT_FOUND`. @internal */
export function layerNotFound(chainID: Digest, what = "layer"): NotFoundError {
  return new NotFoundError(`${what} ${chainID}: not found`, { code: LayerStoreErrorCode.LAYER_NOT_FOUND, details: { chainID } });
}
