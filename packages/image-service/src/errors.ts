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
  /** A layer lookup that is not a list of at most 4,096 sha256 ChainIDs (see `incremental.ts`). */
  INVALID_LOOKUP: "ERR_INVALID_LOOKUP",
  /** A load named a lookup lease this service does not hold (never made, expired, or used already). */
  UNKNOWN_LOOKUP: "ERR_UNKNOWN_LOOKUP",
  /** The operation was aborted through its AbortSignal. */
  ABORTED: "ERR_ABORTED",
  /** A push compression that is not gzip, zstd or none. */
  INVALID_COMPRESSION: "ERR_INVALID_COMPRESSION",
  /** A push compression this runtime cannot make (zstd before Node 22.15's zlib). */
  COMPRESSION_UNSUPPORTED: "ERR_COMPRESSION_UNSUPPORTED",
  /** `unpack` into something that is not an absent or empty directory. */
  TARGET_NOT_EMPTY: "ERR_TARGET_NOT_EMPTY",
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
  ImageServiceErrorCode.INVALID_LOOKUP,
  ImageServiceErrorCode.INVALID_COMPRESSION,
  // `copy`'s locations (`berth:NAME`, `docker://REF`, `oci:DIR[:REF]`), a code of `@berth/registry`
  "ERR_INVALID_LOCATION",
]);

/**
 * Codes a registry backend (`RegistryBackend`, `registry-backend/types.ts`) throws (each on the berth error class named beside it).
 * Callers (the HTTP layer) branch on these, never on message text.
 *
 * Also understood, from the packages below: `ERR_DIGEST_MISMATCH`,
 * `ERR_SIZE_MISMATCH` (DataIntegrityError), `ERR_DIGEST_FORMAT`,
 * `ERR_DIGEST_LENGTH`, `ERR_DIGEST_UNSUPPORTED` (InvalidArgumentError, from
 * `@berth/digest`), `ERR_INVALID_JSON`, `ERR_INVALID_MANIFEST`,
 * `ERR_INVALID_INDEX`, `ERR_INVALID_DESCRIPTOR` (InvalidArgumentError, from
 * `@berth/oci`).
 */
export const REGISTRY_ERROR_CODES = {
  /** NotFoundError: the blob is not in the store, or not a member of the repository asked through. */
  blobUnknown: "ERR_BLOB_UNKNOWN",
  /** NotFoundError: no manifest with that digest, or no such tag, in the repository. */
  manifestUnknown: "ERR_MANIFEST_UNKNOWN",
  /** NotFoundError: the repository does not exist (it has no manifest, tag or blob). */
  nameUnknown: "ERR_NAME_UNKNOWN",
  /** NotFoundError: no upload session with that ID in that repository (finished, cancelled, expired or never made). */
  uploadUnknown: "ERR_UPLOAD_UNKNOWN",
  /**
   * FailedPreconditionError: a chunk did not start at the session's offset (out of order or
   * retried), or another request is writing to the session. `details.offset` is the
   * session's current offset (bytes received so far).
   */
  uploadOffset: "ERR_UPLOAD_OFFSET",
  /** InvalidArgumentError: the upload cannot go on (e.g. it exceeds the blob size limit). */
  uploadInvalid: "ERR_UPLOAD_INVALID",
  /** InvalidArgumentError: a manifest that is not valid JSON of its media type, or whose media type disagrees with its `mediaType` field. */
  manifestInvalid: "ERR_MANIFEST_INVALID",
  /** InvalidArgumentError: a manifest refers to a blob or manifest the repository does not have. `details.digest` names it. */
  manifestBlobUnknown: "ERR_MANIFEST_BLOB_UNKNOWN",
  /** FailedPreconditionError: the backend does not do this (deletes disabled, a media type it refuses). */
  unsupported: "ERR_UNSUPPORTED",
  /** FailedPreconditionError: the operation is not allowed on this content (e.g. deleting a blob a manifest still needs, when the backend forbids it). */
  denied: "ERR_DENIED",
} as const;

/** One of {@link REGISTRY_ERROR_CODES}. */
export type RegistryErrorCode = (typeof REGISTRY_ERROR_CODES)[keyof typeof REGISTRY_ERROR_CODES];
