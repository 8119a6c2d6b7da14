/**
 * Typed errors shared by every berth package.
 *
 * Callers branch on `code`, never on the message text. The classes follow
 * containerd's errdefs kinds; each concrete failure gets its own stable code
 * (e.g. `ERR_DIGEST_MISMATCH`), so `err.code` is enough to tell them apart and
 * `instanceof NotFoundError` is enough to tell the kind.
 */

/** Options accepted by every berth error. */
export interface BerthErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Structured context (the digest, path or reference the error is about). */
  details?: Record<string, unknown>;
}

/** Base class of every error berth throws on purpose. */
export class BerthError extends Error {
  /** Stable machine-readable code, e.g. `ERR_NOT_FOUND`. */
  readonly code: string;
  /** Structured context for programs (never needed to understand the message). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: BerthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.name = new.target.name;
  }
}

/** The caller asked for something that does not exist. */
export class NotFoundError extends BerthError {
  constructor(message: string, options?: BerthErrorOptions & { code?: string }) {
    super(options?.code ?? "ERR_NOT_FOUND", message, options);
  }
}

/** The thing being created exists already (and the caller said that matters). */
export class AlreadyExistsError extends BerthError {
  constructor(message: string, options?: BerthErrorOptions & { code?: string }) {
    super(options?.code ?? "ERR_ALREADY_EXISTS", message, options);
  }
}

/** An argument or input document is malformed. */
export class InvalidArgumentError extends BerthError {
  constructor(message: string, options?: BerthErrorOptions & { code?: string }) {
    super(options?.code ?? "ERR_INVALID_ARGUMENT", message, options);
  }
}

/** The operation is valid but the state of the system does not allow it. */
export class FailedPreconditionError extends BerthError {
  constructor(message: string, options?: BerthErrorOptions & { code?: string }) {
    super(options?.code ?? "ERR_FAILED_PRECONDITION", message, options);
  }
}

/** A resource (daemon, lock, peer) is not reachable now; retrying may help. */
export class UnavailableError extends BerthError {
  constructor(message: string, options?: BerthErrorOptions & { code?: string }) {
    super(options?.code ?? "ERR_UNAVAILABLE", message, options);
  }
}

/** Data did not match what it claimed to be (digest, size, truncation). */
export class DataIntegrityError extends BerthError {
  constructor(message: string, options?: BerthErrorOptions & { code?: string }) {
    super(options?.code ?? "ERR_DATA_INTEGRITY", message, options);
  }
}

/** Digest string does not follow the OCI digest grammar. Code `ERR_DIGEST_FORMAT`. */
export class DigestFormatError extends InvalidArgumentError {
  constructor(message: string, options?: BerthErrorOptions) {
    super(message, { ...options, code: "ERR_DIGEST_FORMAT" });
  }
}

/** Digest's encoded part has the wrong length for its algorithm. Code `ERR_DIGEST_LENGTH`. */
export class DigestLengthError extends InvalidArgumentError {
  constructor(message: string, options?: BerthErrorOptions) {
    super(message, { ...options, code: "ERR_DIGEST_LENGTH" });
  }
}

/** Digest names an algorithm berth does not know. Code `ERR_DIGEST_UNSUPPORTED`. */
export class UnsupportedAlgorithmError extends InvalidArgumentError {
  constructor(message: string, options?: BerthErrorOptions) {
    super(message, { ...options, code: "ERR_DIGEST_UNSUPPORTED" });
  }
}

/** Content hashed to something other than what was expected. Code `ERR_DIGEST_MISMATCH`. */
export class DigestMismatchError extends DataIntegrityError {
  constructor(message: string, options?: BerthErrorOptions) {
    super(message, { ...options, code: "ERR_DIGEST_MISMATCH" });
  }
}

/** Content had a different size than expected. Code `ERR_SIZE_MISMATCH`. */
export class SizeMismatchError extends DataIntegrityError {
  constructor(message: string, options?: BerthErrorOptions) {
    super(message, { ...options, code: "ERR_SIZE_MISMATCH" });
  }
}

/** A short ID / digest prefix matches more than one entry. Code `ERR_AMBIGUOUS_PREFIX`. */
export class AmbiguousPrefixError extends InvalidArgumentError {
  constructor(message: string, options?: BerthErrorOptions) {
    super(message, { ...options, code: "ERR_AMBIGUOUS_PREFIX" });
  }
}

/** Decompressed data exceeded the allowed size (decompression bomb). Code `ERR_DECOMPRESSION_LIMIT`. */
export class DecompressionLimitError extends DataIntegrityError {
  constructor(message: string, options?: BerthErrorOptions) {
    super(message, { ...options, code: "ERR_DECOMPRESSION_LIMIT" });
  }
}

/** Compressed data was corrupt or truncated. Code `ERR_CORRUPT_DATA`. */
export class CorruptDataError extends DataIntegrityError {
  constructor(message: string, options?: BerthErrorOptions) {
    super(message, { ...options, code: "ERR_CORRUPT_DATA" });
  }
}

/** True when `err` is a berth error with the given code. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof BerthError && err.code === code;
}
