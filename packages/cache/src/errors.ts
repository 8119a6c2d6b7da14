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
  /** `getMutable` of a mutable record another ref holds now (FailedPreconditionError). */
  CACHE_REF_LOCKED: "ERR_CACHE_REF_LOCKED",
  /** `mount`/`commit` of a mutable ref that was released or committed already (FailedPreconditionError). */
  CACHE_REF_RELEASED: "ERR_CACHE_REF_RELEASED",
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
  /** `planCacheExport`: a key that is not a sha256 digest, an input linking to a key not exported (InvalidArgumentError). */
  INVALID_CACHE_RECORD: "ERR_INVALID_CACHE_RECORD",
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

// Layer extraction and the snapshotter (src/snapshot/).

/** Error codes of {@link applyLayer} and {@link Snapshotter}. */
export const SnapshotErrorCode = {
  /** A layer entry (or link target, or whiteout) that is absolute or has a `..` component (InvalidArgumentError). */
  UNSAFE_PATH: "ERR_UNSAFE_PATH",
  /** A layer entry that would be written through a symbolic link (InvalidArgumentError). */
  UNSAFE_LINK: "ERR_UNSAFE_LINK",
  /** A hard link to something that is not in the snapshot, or to a directory (InvalidArgumentError). */
  HARDLINK_TARGET: "ERR_HARDLINK_TARGET",
  /** A layer entry under a path that is a file, not a directory (InvalidArgumentError). */
  NOT_A_DIRECTORY: "ERR_NOT_A_DIRECTORY",
  /** Bytes that are not a tar archive, or a tar cut short (InvalidArgumentError). */
  INVALID_TAR: "ERR_INVALID_TAR",
  /** The directory a layer is applied onto does not exist or is not a directory (NotFoundError). */
  TARGET_NOT_FOUND: "ERR_TARGET_NOT_FOUND",
  /** No snapshot with that key (NotFoundError). */
  SNAPSHOT_NOT_FOUND: "ERR_SNAPSHOT_NOT_FOUND",
  /** A snapshot with that key or name exists already (AlreadyExistsError). */
  SNAPSHOT_EXISTS: "ERR_SNAPSHOT_EXISTS",
  /** `commit` of a snapshot that is not an active (writable) one, or a parent that is not committed (FailedPreconditionError). */
  SNAPSHOT_KIND: "ERR_SNAPSHOT_KIND",
  /** `remove` of a committed snapshot that others are prepared on (FailedPreconditionError). */
  SNAPSHOT_HAS_CHILDREN: "ERR_SNAPSHOT_HAS_CHILDREN",
  /** An empty or oversized snapshot key (InvalidArgumentError). */
  SNAPSHOT_KEY: "ERR_SNAPSHOT_KEY",
} as const;

/** One of the {@link SnapshotErrorCode} values. */
export type SnapshotErrorCodeValue = (typeof SnapshotErrorCode)[keyof typeof SnapshotErrorCode];

// The filesystem diff and the layer writer (src/diff/).

/** Error codes of `diffTrees`, `directoryTree`, `entriesTree`, `IdentityMapping` and `writeLayer`. */
export const DiffErrorCode = {
  /** The upper (or a lower) root is not a directory (InvalidArgumentError). */
  NOT_A_DIRECTORY: "ERR_NOT_A_DIRECTORY",
  /** An owner the identity mapping does not cover (InvalidArgumentError). */
  UNMAPPED_ID: "ERR_UNMAPPED_ID",
  /** An identity mapping with a negative, fractional or overlapping range (InvalidArgumentError). */
  INVALID_ID_MAPPING: "ERR_INVALID_ID_MAPPING",
  /** A caller-given entry list with an absolute, `..` or duplicate path, or a path under a non-directory (InvalidArgumentError). */
  INVALID_TREE_ENTRY: "ERR_INVALID_TREE_ENTRY",
  /** The layer writer was asked for contents the upper tree cannot give (FailedPreconditionError). */
  NO_CONTENT: "ERR_NO_CONTENT",
} as const;

/** One of the {@link DiffErrorCode} values. */
export type DiffErrorCodeValue = (typeof DiffErrorCode)[keyof typeof DiffErrorCode];
