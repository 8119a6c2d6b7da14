/**
 * The typed errors `@berth/docker-archive` throws, each with a stable `code`.
 * Callers branch on `err.code` (see README "Error codes").
 * @module
 */
import {
  type BerthError,
  type BerthErrorOptions,
  DataIntegrityError,
  DecompressionLimitError,
  DigestMismatchError,
  InvalidArgumentError,
  NotFoundError,
} from "@berth/digest";

/** Stable codes of the errors this package throws itself (store errors pass through unchanged). */
export const ArchiveErrorCode = {
  /** Entry name is absolute or contains `..`. */
  UNSAFE_PATH: "ERR_UNSAFE_PATH",
  /** Symlink/hardlink escapes the archive, or points to an entry that is not there. */
  UNSAFE_LINK: "ERR_UNSAFE_LINK",
  /** The same entry name appears twice with different content. */
  DUPLICATE_ENTRY: "ERR_DUPLICATE_ENTRY",
  /** A JSON document (manifest.json, index.json, config, manifest) is larger than the limit. */
  JSON_TOO_LARGE: "ERR_JSON_TOO_LARGE",
  /** The archive ends in the middle of a header or an entry. */
  TRUNCATED: "ERR_TRUNCATED",
  /** A tar header is corrupt (bad checksum, bad number field). */
  INVALID_TAR: "ERR_INVALID_TAR",
  /** manifest.json / index.json names a path or blob that is not an entry of the archive. */
  NOT_IN_ARCHIVE: "ERR_NOT_IN_ARCHIVE",
  /** An entry under `blobs/` is not `blobs/sha256/<64 hex>`. */
  INVALID_BLOB_PATH: "ERR_INVALID_BLOB_PATH",
  /** A blob's content does not hash to its name / descriptor, or a layer's DiffID differs from the config. */
  DIGEST_MISMATCH: "ERR_DIGEST_MISMATCH",
  /** A layer (or a gzip'd archive) decompresses to more than the limit. */
  DECOMPRESSION_LIMIT: "ERR_DECOMPRESSION_LIMIT",
  /** manifest.json / index.json / a manifest / a config is not the JSON it should be. */
  INVALID_MANIFEST: "ERR_INVALID_MANIFEST",
  /** An index tree nests too deeply, one index lists too many descriptors, or the tree names too many in all. */
  INDEX_LIMIT: "ERR_INDEX_LIMIT",
  /** Neither manifest.json nor index.json is in the archive. */
  UNKNOWN_FORMAT: "ERR_UNKNOWN_ARCHIVE_FORMAT",
  /** A tag in the archive points to a different image in the store (with `tagConflict: "error"`). */
  TAG_CONFLICT: "ERR_TAG_CONFLICT",
  /** The Docker daemon is unreachable or answered with an error status. */
  DAEMON: "ERR_DAEMON",
  /** `DOCKER_HOST` (or a context's host) is not an address the docker CLI accepts. */
  INVALID_DOCKER_HOST: "ERR_INVALID_DOCKER_HOST",
  /** A valid daemon address berth cannot use yet (`ssh://`, `npipe://`, `fd://`). */
  UNSUPPORTED_DOCKER_HOST: "ERR_UNSUPPORTED_DOCKER_HOST",
  /** The docker context named by `DOCKER_CONTEXT` / `currentContext` does not exist. */
  DOCKER_CONTEXT_NOT_FOUND: "ERR_DOCKER_CONTEXT_NOT_FOUND",
  /** The docker CLI's config (`config.json`, a context's `meta.json`) is not the JSON it should be. */
  DOCKER_CONFIG: "ERR_DOCKER_CONFIG",
  /** TLS to the daemon failed: certificate files unreadable or invalid, or the handshake was refused. */
  DOCKER_TLS: "ERR_DOCKER_TLS",
} as const;

/** Entry name is absolute or contains `..` (code `ERR_UNSAFE_PATH`). */
export function unsafePath(name: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`archive entry ${JSON.stringify(name)}: ${why}`, {
    code: ArchiveErrorCode.UNSAFE_PATH,
    details: { name },
  });
}

/** Link escapes the archive or dangles (code `ERR_UNSAFE_LINK`). */
export function unsafeLink(name: string, target: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`archive link ${JSON.stringify(name)} -> ${JSON.stringify(target)}: ${why}`, {
    code: ArchiveErrorCode.UNSAFE_LINK,
    details: { name, target },
  });
}

/** Same name twice with different content (code `ERR_DUPLICATE_ENTRY`). */
export function duplicateEntry(name: string): InvalidArgumentError {
  return new InvalidArgumentError(`archive entry ${JSON.stringify(name)} appears twice with different content`, {
    code: ArchiveErrorCode.DUPLICATE_ENTRY,
    details: { name },
  });
}

/** JSON document over the size limit (code `ERR_JSON_TOO_LARGE`). */
export function jsonTooLarge(name: string, size: number, limit: number): InvalidArgumentError {
  return new InvalidArgumentError(
    `archive entry ${JSON.stringify(name)} is ${size} bytes, more than the JSON limit of ${limit} bytes`,
    { code: ArchiveErrorCode.JSON_TOO_LARGE, details: { name, size, limit } },
  );
}

/** Truncated archive (code `ERR_TRUNCATED`). */
export function truncated(what: string, options?: BerthErrorOptions): DataIntegrityError {
  return new DataIntegrityError(`archive is truncated: ${what}`, { ...options, code: ArchiveErrorCode.TRUNCATED });
}

/** Corrupt tar header (code `ERR_INVALID_TAR`). */
export function invalidTar(what: string, offset: number): DataIntegrityError {
  return new DataIntegrityError(`invalid tar header at byte ${offset}: ${what}`, {
    code: ArchiveErrorCode.INVALID_TAR,
    details: { offset },
  });
}

/**
 * A layer whose uncompressed content is not a tar archive (code
 * `ERR_INVALID_TAR`, as for the archive itself): docker load refuses it too.
 */
export function layerNotTar(what: string, cause: BerthError): DataIntegrityError {
  return new DataIntegrityError(`${what}: ${cause.message}`, {
    cause,
    code: ArchiveErrorCode.INVALID_TAR,
    details: { ...cause.details },
  });
}

/** A referenced path/blob is missing (code `ERR_NOT_IN_ARCHIVE`). */
export function notInArchive(what: string, referencedBy: string): NotFoundError {
  return new NotFoundError(`${what} (referenced by ${referencedBy}) is not an entry of the archive`, {
    code: ArchiveErrorCode.NOT_IN_ARCHIVE,
    details: { what, referencedBy },
  });
}

/** Entry under blobs/ that is not a sha256 digest path (code `ERR_INVALID_BLOB_PATH`). */
export function invalidBlobPath(name: string): InvalidArgumentError {
  return new InvalidArgumentError(`archive entry ${JSON.stringify(name)} is not a blobs/sha256/<64 hex> path`, {
    code: ArchiveErrorCode.INVALID_BLOB_PATH,
    details: { name },
  });
}

/** Digest mismatch (code `ERR_DIGEST_MISMATCH`). */
export function digestMismatch(what: string, expected: string, actual: string): DigestMismatchError {
  return new DigestMismatchError(`${what}: expected ${expected}, got ${actual}`, { details: { expected, actual } });
}

/** Decompression limit (code `ERR_DECOMPRESSION_LIMIT`). */
export function decompressionLimit(what: string, limit: number): DecompressionLimitError {
  return new DecompressionLimitError(`${what} decompresses to more than the limit of ${limit} bytes`, {
    details: { limit },
  });
}

/** Malformed manifest/index/config JSON (code `ERR_INVALID_MANIFEST`). */
export function invalidManifest(name: string, why: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`${name}: ${why}`, {
    code: ArchiveErrorCode.INVALID_MANIFEST,
    details: { name },
    cause,
  });
}

/** An index tree beyond a walk limit (code `ERR_INDEX_LIMIT`): `what` exceeds `limit`. */
export function indexLimit(doc: string, what: string, limit: number): InvalidArgumentError {
  return new InvalidArgumentError(`${doc}: ${what}, more than the limit of ${limit}`, {
    code: ArchiveErrorCode.INDEX_LIMIT,
    details: { name: doc, limit },
  });
}
