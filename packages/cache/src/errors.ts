/**
 * The stable codes of the errors (and warnings) `@berth/cache` reports, in
 * one place. Callers branch on `code` (see README "Error codes"), never on the
 * text. Errors of the stores underneath (`ERR_LAYER_NOT_FOUND`, …) pass through
 * with their own codes.
 * @module
 */

/** Error and warning codes of the build cache. The errors are `@berth/digest` classes. */
export const CacheErrorCode = {
  /** `getCache` with a parent not in the store (NotFoundError). */
  CACHE_PARENT_NOT_FOUND: "ERR_CACHE_PARENT_NOT_FOUND",
  /** A child the store lists cannot be read (NotFoundError). */
  IMAGE_NOT_FOUND: "ERR_IMAGE_NOT_FOUND",
  /** A `--cache-from` source whose history names a layer it lacks (BerthError). */
  CACHE_HISTORY_MISMATCH: "ERR_CACHE_HISTORY_MISMATCH",
  /** Warning, not thrown: a `--cache-from` source that does not resolve is skipped. */
  CACHE_FROM_NOT_FOUND: "ERR_CACHE_FROM_NOT_FOUND",
  /** Warning, not thrown: the built-locally flag is unreadable; the image is skipped. */
  BUILT_LOCALLY_UNKNOWN: "ERR_BUILT_LOCALLY_UNKNOWN",
  /** `record`/`get`/`update` of an unknown record (NotFoundError). */
  CACHE_RECORD_NOT_FOUND: "ERR_CACHE_RECORD_NOT_FOUND",
  /** A malformed record ID (InvalidArgumentError). */
  CACHE_RECORD_ID: "ERR_CACHE_RECORD_ID",
  /** An unknown filter field, bad regular expression or duration (InvalidArgumentError). */
  CACHE_FILTER: "ERR_CACHE_FILTER",
  /** Negative keepBytes/keepDuration (InvalidArgumentError). */
  CACHE_PRUNE_OPTIONS: "ERR_CACHE_PRUNE_OPTIONS",
  /** `openCacheManager` without root and layers (FailedPreconditionError). */
  CACHE_STORE: "ERR_CACHE_STORE",
  /** A malformed cache manifest/config (InvalidArgumentError). */
  INVALID_CACHE_CONFIG: "ERR_INVALID_CACHE_CONFIG",
  /** No manifest given and the source has no index.json (InvalidArgumentError). */
  CACHE_NO_MANIFEST: "ERR_CACHE_NO_MANIFEST",
  /** No index.json entry with the tag, or several and none `latest` (NotFoundError). */
  CACHE_MANIFEST_NOT_FOUND: "ERR_CACHE_MANIFEST_NOT_FOUND",
  /** The layout path does not exist (NotFoundError). */
  CACHE_SOURCE_NOT_FOUND: "ERR_CACHE_SOURCE_NOT_FOUND",
  /** No index.json in the directory or tar (NotFoundError). */
  NOT_OCI_LAYOUT: "ERR_NOT_OCI_LAYOUT",
  /** An image manifest whose config has no inline cache (NotFoundError). */
  NO_INLINE_CACHE: "ERR_NO_INLINE_CACHE",
  /** A blob missing from the source (NotFoundError). */
  BLOB_NOT_FOUND: "ERR_BLOB_NOT_FOUND",
  /** A JSON document over the limit (FailedPreconditionError). */
  BLOB_TOO_LARGE: "ERR_BLOB_TOO_LARGE",
  /** A tar path escaping the layout (InvalidArgumentError). */
  UNSAFE_PATH: "ERR_UNSAFE_PATH",
  /** The same tar entry twice (InvalidArgumentError). */
  DUPLICATE_ENTRY: "ERR_DUPLICATE_ENTRY",
  /** A tar entry cut short (InvalidArgumentError). */
  TRUNCATED_ARCHIVE: "ERR_TRUNCATED_ARCHIVE",
  /** A broken tar header (InvalidArgumentError). */
  INVALID_ARCHIVE: "ERR_INVALID_ARCHIVE",
  /** `restoreParentChain` without a `chain.json` (NotFoundError). */
  NO_PARENT_CHAIN: "ERR_NO_PARENT_CHAIN",
  /** A malformed `chain.json` (InvalidArgumentError). */
  INVALID_PARENT_CHAIN: "ERR_INVALID_PARENT_CHAIN",
  /** A parent-chain file over 16 MiB (InvalidArgumentError). */
  JSON_TOO_LARGE: "ERR_JSON_TOO_LARGE",
} as const;

/** One of the {@link CacheErrorCode} values. */
export type CacheErrorCodeValue = (typeof CacheErrorCode)[keyof typeof CacheErrorCode];
