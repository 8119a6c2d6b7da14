/**
 * The stable codes of the errors `@berth/image-store` throws, in one place,
 * and the two errors many methods share. Callers branch on `err.code` (see
 * README "Errors"), never on the text.
 * @module
 */
import { FailedPreconditionError, NotFoundError } from "@berth/digest";

/**
 * Error codes of the image and reference stores. The errors are
 * `@berth/digest` classes; codes marked "passed on" are thrown by the
 * packages underneath (`@berth/digest`, `@berth/oci`, `@berth/layer-store`)
 * with the same value, or by this package in their name.
 */
export const ImageStoreErrorCode = {
  /** passed on (`@berth/oci`): config/manifest/index not JSON or not an object (InvalidArgumentError). */
  INVALID_JSON: "ERR_INVALID_JSON",
  /** passed on (`@berth/oci`): malformed manifest (InvalidArgumentError). */
  INVALID_MANIFEST: "ERR_INVALID_MANIFEST",
  /** passed on (`@berth/oci`): malformed index (InvalidArgumentError). */
  INVALID_INDEX: "ERR_INVALID_INDEX",
  /** passed on (`@berth/oci`): malformed descriptor (InvalidArgumentError). */
  INVALID_DESCRIPTOR: "ERR_INVALID_DESCRIPTOR",
  /** Config not bytes, fields of the wrong type, no rootfs, too many non-empty history entries (InvalidArgumentError). */
  INVALID_CONFIG: "ERR_INVALID_CONFIG",
  /** Malformed reference, tag+digest in `tag`, empty input to `resolve` (InvalidArgumentError). */
  INVALID_REFERENCE: "ERR_INVALID_REFERENCE",
  /** passed on (`@berth/digest`): malformed or path-like ID or prefix (InvalidArgumentError). */
  DIGEST_FORMAT: "ERR_DIGEST_FORMAT",
  /** passed on (`@berth/digest`): an ID's hex part has the wrong length (InvalidArgumentError). */
  DIGEST_LENGTH: "ERR_DIGEST_LENGTH",
  /** An image ID that is not a sha256 digest (InvalidArgumentError). */
  DIGEST_UNSUPPORTED: "ERR_DIGEST_UNSUPPORTED",
  /** `setParent` would make a cycle (InvalidArgumentError). */
  INVALID_PARENT: "ERR_INVALID_PARENT",
  /** `setLastUpdated` with an invalid date (InvalidArgumentError). */
  INVALID_DATE: "ERR_INVALID_DATE",
  /** `openStore` without a root path (InvalidArgumentError). */
  INVALID_ROOT: "ERR_INVALID_ROOT",
  /** No such image; nothing resolves (NotFoundError). */
  IMAGE_NOT_FOUND: "ERR_IMAGE_NOT_FOUND",
  /** `untag` of an unknown reference (NotFoundError). */
  REFERENCE_NOT_FOUND: "ERR_REFERENCE_NOT_FOUND",
  /** `create` whose rootfs ChainID is not in the layer store (NotFoundError). */
  LAYER_NOT_FOUND: "ERR_LAYER_NOT_FOUND",
  /** passed on (`@berth/digest` AmbiguousPrefixError): a prefix matches several images. */
  AMBIGUOUS_PREFIX: "ERR_AMBIGUOUS_PREFIX",
  /** A tag points at another image (no `force`), or a digest reference would move (AlreadyExistsError). */
  TAG_CONFLICT: "ERR_TAG_CONFLICT",
  /** A stored config/manifest does not hash to its digest (DataIntegrityError; run fsck). */
  DIGEST_MISMATCH: "ERR_DIGEST_MISMATCH",
  /** A stored config/manifest is gone (DataIntegrityError; run fsck). */
  BLOB_MISSING: "ERR_BLOB_MISSING",
  /** A layer chain whose DiffIDs differ from the config's, or longer than 10,000 layers (DataIntegrityError). */
  LAYER_CHAIN: "ERR_LAYER_CHAIN",
  /** `images/snapshot.log` damaged (not a torn tail) (DataIntegrityError). */
  METADATA_CORRUPT: "ERR_METADATA_CORRUPT",
  /** A pin record name that is not `[A-Za-z0-9][A-Za-z0-9._-]{0,199}` (InvalidArgumentError). */
  INVALID_PIN: "ERR_INVALID_PIN",
  /** The journal file was replaced while the images lock was held (DataIntegrityError). */
  METADATA_RACE: "ERR_METADATA_RACE",
  /** A call after `close()` (FailedPreconditionError). */
  STORE_CLOSED: "ERR_STORE_CLOSED",
  /** passed on (`@berth/layer-store`): the `images` lock was not acquired in time (UnavailableError). */
  LOCK_TIMEOUT: "ERR_LOCK_TIMEOUT",
} as const;

/** One of the {@link ImageStoreErrorCode} values. */
export type ImageStoreErrorCodeValue = (typeof ImageStoreErrorCode)[keyof typeof ImageStoreErrorCode];

/** The error of a lookup that found no image: `ERR_IMAGE_NOT_FOUND`. @internal */
export function imageNotFound(id: string): NotFoundError {
  return new NotFoundError(`no such image: ${id}`, { code: ImageStoreErrorCode.IMAGE_NOT_FOUND, details: { id } });
}

/** The error of any call on a closed store: `ERR_STORE_CLOSED`. @internal */
export function closedError(): FailedPreconditionError {
  return new FailedPreconditionError("the store is closed", { code: ImageStoreErrorCode.STORE_CLOSED });
}
