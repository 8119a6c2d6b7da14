/**
 * The stable codes of the errors layer extraction and the snapshotter throw
 * (kept apart from `CacheErrorCode` so each half of the cache owns its file).
 * The classes are `@berth/digest`'s; callers branch on `code`.
 * @module
 */

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
