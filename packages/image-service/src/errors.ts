/**
 * The error codes `@berth/image-service` itself raises (one registry; callers
 * test `err.code`, never message text). The classes are `@berth/digest`'s:
 * InvalidArgumentError for bad filters, changes, platforms, layer tars and
 * push references; FailedPreconditionError for pulls the store cannot hold;
 * AlreadyExistsError / FailedPreconditionError for moby's delete conflicts.
 * Errors of the stores and archives below pass through with their own codes.
 * @module
 */
export const ImageServiceErrorCode = {
  /** A filter key or value the operation does not accept (dockerd: `invalid filter`). */
  INVALID_FILTER: "ERR_INVALID_FILTER",
  /** A `--change` instruction that cannot be applied. */
  INVALID_CHANGE: "ERR_INVALID_CHANGE",
  /** A platform that is not `os/arch[/variant]`. */
  INVALID_PLATFORM: "ERR_INVALID_PLATFORM",
  /** `SOURCE_DATE_EPOCH` that is not a whole number of seconds. */
  INVALID_SOURCE_DATE_EPOCH: "ERR_INVALID_SOURCE_DATE_EPOCH",
  /** Delete by ID of an image with several references, without force (a soft conflict). */
  IMAGE_IN_USE: "ERR_IMAGE_IN_USE",
  /** Delete of an image other images name as parent (a hard conflict: force does not help). */
  IMAGE_HAS_CHILDREN: "ERR_IMAGE_HAS_CHILDREN",
  /** A layer given as a tar is not one. */
  NOT_A_TAR: "ERR_NOT_A_TAR",
  /** A layer tar entry that would land outside the image root. */
  UNSAFE_PATH: "ERR_UNSAFE_PATH",
  /** A layer tar with more entries than the explorer holds in memory (`MAX_LAYER_ENTRIES`). */
  TOO_MANY_ENTRIES: "ERR_TOO_MANY_ENTRIES",
  /** A layer index outside the image's layers (the explorer's layer view). */
  INVALID_LAYER_INDEX: "ERR_INVALID_LAYER_INDEX",
  /** A pull of something the store cannot hold as an image: an artifact (no image config), foreign layers, an oversized config. */
  UNSUPPORTED_IMAGE: "ERR_UNSUPPORTED_IMAGE",
  /** A pull with an explicit platform of a single-platform image built for another. */
  PLATFORM_MISMATCH: "ERR_PLATFORM_MISMATCH",
  /** A push of a digest reference (a push names a tag). */
  PUSH_BY_DIGEST: "ERR_PUSH_BY_DIGEST",
  /** The operation was aborted through its AbortSignal. */
  ABORTED: "ERR_ABORTED",
} as const;

/** One of {@link ImageServiceErrorCode}'s values. */
export type ImageServiceErrorCode = (typeof ImageServiceErrorCode)[keyof typeof ImageServiceErrorCode];

/**
 * Codes that mean the caller's own arguments were wrong (a CLI shows them as
 * usage errors, an HTTP face as 400).
 */
export const ARGUMENT_ERROR_CODES: ReadonlySet<string> = new Set([
  ImageServiceErrorCode.INVALID_FILTER,
  ImageServiceErrorCode.INVALID_CHANGE,
  ImageServiceErrorCode.INVALID_PLATFORM,
  ImageServiceErrorCode.INVALID_LAYER_INDEX,
  ImageServiceErrorCode.PUSH_BY_DIGEST,
]);
