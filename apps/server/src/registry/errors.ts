/**
 * The registry's one error type and its rendering: the OCI Distribution
 * spec's error JSON (`{"errors":[{"code","message","detail"}]}`) with the
 * spec's codes and statuses. Backend errors (typed berth errors) are mapped
 * here, in one table, by their `code`; anything else becomes a 500 whose body
 * says nothing of the internals (the log line has the error code).
 * @module
 */
import { BerthError, DataIntegrityError, FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError } from "@berth/digest";
import { REGISTRY_ERROR_CODES as C } from "./backend.js";

/** Error codes of the OCI Distribution spec (v1.1), plus the few berth answers with where the spec has none. */
export const SPEC_ERROR_CODES = {
  BLOB_UNKNOWN: "BLOB_UNKNOWN",
  BLOB_UPLOAD_INVALID: "BLOB_UPLOAD_INVALID",
  BLOB_UPLOAD_UNKNOWN: "BLOB_UPLOAD_UNKNOWN",
  DIGEST_INVALID: "DIGEST_INVALID",
  MANIFEST_BLOB_UNKNOWN: "MANIFEST_BLOB_UNKNOWN",
  MANIFEST_INVALID: "MANIFEST_INVALID",
  MANIFEST_UNKNOWN: "MANIFEST_UNKNOWN",
  NAME_INVALID: "NAME_INVALID",
  NAME_UNKNOWN: "NAME_UNKNOWN",
  SIZE_INVALID: "SIZE_INVALID",
  UNAUTHORIZED: "UNAUTHORIZED",
  DENIED: "DENIED",
  UNSUPPORTED: "UNSUPPORTED",
  TOOMANYREQUESTS: "TOOMANYREQUESTS",
  /** Not in the spec's table: a blob `Range` that cannot be satisfied (416). */
  RANGE_INVALID: "RANGE_INVALID",
  /** Not in the spec's table (distribution v3's code): a bad `n` on a list. */
  PAGINATION_NUMBER_INVALID: "PAGINATION_NUMBER_INVALID",
  /** Not in the spec's table: the server failed (never for bad input). */
  UNKNOWN: "UNKNOWN",
} as const;

/** One of {@link SPEC_ERROR_CODES}. */
export type SpecErrorCode = keyof typeof SPEC_ERROR_CODES;

/** An error answered to a registry client: status, spec code, message, optional detail and headers. */
export class RegistryError extends Error {
  readonly status: number;
  readonly code: SpecErrorCode;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(status: number, code: SpecErrorCode, message: string, options: { detail?: unknown; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RegistryError";
    this.status = status;
    this.code = code;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  /** The spec's error JSON for this error. */
  body(): string {
    const entry: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return JSON.stringify({ errors: [entry] });
  }
}

/** How each backend code is answered. */
const BY_CODE: Record<string, [number, SpecErrorCode]> = {
  [C.blobUnknown]: [404, "BLOB_UNKNOWN"],
  [C.manifestUnknown]: [404, "MANIFEST_UNKNOWN"],
  [C.nameUnknown]: [404, "NAME_UNKNOWN"],
  [C.uploadUnknown]: [404, "BLOB_UPLOAD_UNKNOWN"],
  [C.uploadOffset]: [416, "BLOB_UPLOAD_INVALID"],
  [C.uploadInvalid]: [400, "BLOB_UPLOAD_INVALID"],
  [C.manifestInvalid]: [400, "MANIFEST_INVALID"],
  [C.manifestBlobUnknown]: [400, "MANIFEST_BLOB_UNKNOWN"],
  [C.unsupported]: [405, "UNSUPPORTED"],
  [C.denied]: [403, "DENIED"],
  ERR_DIGEST_MISMATCH: [400, "DIGEST_INVALID"],
  ERR_SIZE_MISMATCH: [400, "SIZE_INVALID"],
  ERR_DIGEST_FORMAT: [400, "DIGEST_INVALID"],
  ERR_DIGEST_LENGTH: [400, "DIGEST_INVALID"],
  ERR_DIGEST_UNSUPPORTED: [400, "DIGEST_INVALID"],
  ERR_INVALID_JSON: [400, "MANIFEST_INVALID"],
  ERR_INVALID_MANIFEST: [400, "MANIFEST_INVALID"],
  ERR_INVALID_INDEX: [400, "MANIFEST_INVALID"],
  ERR_INVALID_DESCRIPTOR: [400, "MANIFEST_INVALID"],
};

/**
 * The answer for any error a handler or backend threw. Backend errors keep
 * their message (they name the digest or tag, never a file path); unknown
 * errors become a 500 with a generic message.
 */
export function toRegistryError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  if (err instanceof BerthError) {
    const mapped = BY_CODE[err.code];
    const detail = err.details;
    if (mapped) {
      const [status, code] = mapped;
      return new RegistryError(status, code, err.message, { detail, cause: err });
    }
    // By kind, for codes this table does not list.
    if (err instanceof NotFoundError) return new RegistryError(404, "BLOB_UNKNOWN", err.message, { detail, cause: err });
    if (err instanceof InvalidArgumentError || err instanceof DataIntegrityError) {
      return new RegistryError(400, "UNSUPPORTED", err.message, { detail, cause: err });
    }
    if (err instanceof FailedPreconditionError) return new RegistryError(405, "UNSUPPORTED", err.message, { detail, cause: err });
    if (err instanceof UnavailableError) {
      return new RegistryError(503, "TOOMANYREQUESTS", err.message, { headers: { "Retry-After": "1" }, cause: err });
    }
  }
  // The store's file system said no: say so (not a bug of the server's); the path stays out.
  const fs = fileSystemCode(err);
  if (fs === "ENOSPC" || fs === "EDQUOT") return new RegistryError(507, "UNKNOWN", "insufficient storage: no space left on device", { cause: err });
  if (fs === "EROFS") return new RegistryError(503, "UNKNOWN", "the store is on a read-only file system", { cause: err });
  return new RegistryError(500, "UNKNOWN", "internal server error", { cause: err });
}

/** The `code` of a Node system error at `err` or along its causes (ENOSPC, EROFS, …). */
function fileSystemCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code) && (e as NodeJS.ErrnoException).syscall !== undefined) return code;
  }
  return undefined;
}
