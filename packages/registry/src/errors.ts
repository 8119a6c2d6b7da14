/**
 * The error codes of `@berth/registry`, in one registry. Callers branch on
 * `err.code` (or on the class: {@link NotFoundError}, {@link UnavailableError}…
 * from `@berth/digest`), never on the message.
 * @module
 */
import {
  type BerthErrorOptions,
  DataIntegrityError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "@berth/digest";

/** Every code this package throws with. */
export const REGISTRY_ERROR_CODES = {
  /** The registry refused the credentials (401 after authenticating), or has none for an anonymous caller. */
  UNAUTHORIZED: "ERR_REGISTRY_UNAUTHORIZED",
  /** Authenticated, but the action is not allowed (403). */
  DENIED: "ERR_REGISTRY_DENIED",
  /** No such manifest (tag or digest) in the repository. */
  MANIFEST_NOT_FOUND: "ERR_MANIFEST_NOT_FOUND",
  /** No such blob in the repository (or in an OCI layout). */
  BLOB_NOT_FOUND: "ERR_BLOB_NOT_FOUND",
  /** No such repository (or the registry hides it). */
  REPOSITORY_NOT_FOUND: "ERR_REPOSITORY_NOT_FOUND",
  /** The registry answered 429 until retries ran out. */
  TOO_MANY_REQUESTS: "ERR_REGISTRY_TOO_MANY_REQUESTS",
  /** The registry could not be reached, or answered 5xx until retries ran out. */
  UNAVAILABLE: "ERR_REGISTRY_UNAVAILABLE",
  /** The registry answered something the protocol does not allow (status, header, body). */
  PROTOCOL: "ERR_REGISTRY_PROTOCOL",
  /** The registry refused a request with an OCI error code (details.errors has them). */
  REJECTED: "ERR_REGISTRY_REJECTED",
  /** The token endpoint failed or answered without a token. */
  TOKEN: "ERR_REGISTRY_TOKEN",
  /** A `WWW-Authenticate` header that cannot be parsed or names an unsupported scheme. */
  AUTH_CHALLENGE: "ERR_AUTH_CHALLENGE",
  /** A manifest larger than the limit (4 MiB by default). */
  MANIFEST_TOO_LARGE: "ERR_MANIFEST_TOO_LARGE",
  /** A manifest of a media type berth does not read (Docker schema 1, unknown types). */
  MANIFEST_UNSUPPORTED: "ERR_MANIFEST_UNSUPPORTED",
  /** No manifest of an index matches the requested platform. */
  NO_MATCHING_PLATFORM: "ERR_NO_MATCHING_PLATFORM",
  /** A `docker-credential-*` helper failed or is missing. */
  CREDENTIAL_HELPER: "ERR_CREDENTIAL_HELPER",
  /** Docker's `config.json` is not valid JSON or has malformed entries. */
  DOCKER_CONFIG: "ERR_DOCKER_CONFIG",
  /** An OCI layout directory is malformed (no `oci-layout`, bad `index.json`). */
  LAYOUT_INVALID: "ERR_LAYOUT_INVALID",
  /** An OCI archive (`oci-archive:`) that is not a tar of an OCI layout, or holds anything else (links, other paths). */
  INVALID_ARCHIVE: "ERR_INVALID_ARCHIVE",
  /** No manifest with that ref name in an OCI layout's `index.json`. */
  LAYOUT_REF_NOT_FOUND: "ERR_LAYOUT_REF_NOT_FOUND",
  /** A registry host, repository or reference argument is malformed. */
  INVALID_NAME: "ERR_INVALID_NAME",
  /** A registry or layout reference string (`docker://…`, `oci:…`) is malformed. */
  INVALID_LOCATION: "ERR_INVALID_LOCATION",
  /** An operation was aborted through its AbortSignal. */
  ABORTED: "ERR_ABORTED",
} as const;

/** One of {@link REGISTRY_ERROR_CODES}. */
export type RegistryErrorCode = (typeof REGISTRY_ERROR_CODES)[keyof typeof REGISTRY_ERROR_CODES];

/** An entry of the Distribution spec's error body (`{"errors":[{code,message,detail}]}`). */
export interface DistributionError {
  code: string;
  message?: string;
  detail?: unknown;
}

type Opts = BerthErrorOptions & { code?: string };

/**
 * What a registry said when it refused a request: the HTTP status and its
 * error body. Thrown as the right kind of berth error (NotFoundError for 404,
 * UnavailableError for 5xx, FailedPreconditionError for 401/403, …) with the
 * status and the registry's error entries in `details`.
 */
export function registryError(
  what: string,
  status: number,
  errors: DistributionError[],
  options: { notFoundCode?: string; cause?: unknown } = {},
): Error {
  const said = errors.length > 0 ? errors.map((e) => `${e.code}${e.message ? `: ${e.message}` : ""}`).join("; ") : `HTTP ${status}`;
  const details = { status, errors };
  const message = `${what}: ${said}`;
  const base: Opts = { details, ...(options.cause !== undefined ? { cause: options.cause } : {}) };
  if (status === 401) return new FailedPreconditionError(message, { ...base, code: REGISTRY_ERROR_CODES.UNAUTHORIZED });
  if (status === 403) return new FailedPreconditionError(message, { ...base, code: REGISTRY_ERROR_CODES.DENIED });
  if (status === 404) {
    const code =
      options.notFoundCode ??
      (errors.some((e) => e.code === "NAME_UNKNOWN") ? REGISTRY_ERROR_CODES.REPOSITORY_NOT_FOUND : REGISTRY_ERROR_CODES.MANIFEST_NOT_FOUND);
    return new NotFoundError(message, { ...base, code });
  }
  if (status === 429) return new UnavailableError(message, { ...base, code: REGISTRY_ERROR_CODES.TOO_MANY_REQUESTS });
  if (status >= 500) return new UnavailableError(message, { ...base, code: REGISTRY_ERROR_CODES.UNAVAILABLE });
  if (status === 400 && errors.some((e) => e.code === "DIGEST_INVALID" || e.code === "SIZE_INVALID")) {
    return new DataIntegrityError(message, { ...base, code: REGISTRY_ERROR_CODES.REJECTED });
  }
  return new FailedPreconditionError(message, { ...base, code: REGISTRY_ERROR_CODES.REJECTED });
}

/** The registry broke the protocol. Code `ERR_REGISTRY_PROTOCOL`. */
export function protocolError(message: string, options: BerthErrorOptions = {}): FailedPreconditionError {
  return new FailedPreconditionError(message, { ...options, code: REGISTRY_ERROR_CODES.PROTOCOL });
}

/** A malformed name, host or reference argument. Code `ERR_INVALID_NAME`. */
export function invalidName(message: string, options: BerthErrorOptions = {}): InvalidArgumentError {
  return new InvalidArgumentError(message, { ...options, code: REGISTRY_ERROR_CODES.INVALID_NAME });
}

/** The registry could not be reached. Code `ERR_REGISTRY_UNAVAILABLE`. */
export function unreachable(message: string, options: BerthErrorOptions = {}): UnavailableError {
  return new UnavailableError(message, { ...options, code: REGISTRY_ERROR_CODES.UNAVAILABLE });
}

/** The caller aborted. Code `ERR_ABORTED`; `cause` is the signal's reason. */
export function abortedError(what: string, reason?: unknown): UnavailableError {
  return new UnavailableError(`${what}: aborted`, { code: REGISTRY_ERROR_CODES.ABORTED, cause: reason });
}
