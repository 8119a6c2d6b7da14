/**
 * Errors of the Engine API face: its codes (one registry), the HTTP status of
 * every error class, and the error body dockerd writes (`{"message": …}`;
 * plain text for a path version below 1.24, as dockerd does).
 * @module
 */
import type { ServerResponse } from "node:http";
import {
  AlreadyExistsError,
  BerthError,
  DataIntegrityError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "@berth/digest";

/** The face's own error codes (the image service brings its own). */
export const EngineErrorCode = {
  /** A `/v1.NN/` below the minimum (400). */
  VersionTooOld: "ERR_ENGINE_VERSION_TOO_OLD",
  /** A `/v1.NN/` above the maximum (400). */
  VersionTooNew: "ERR_ENGINE_VERSION_TOO_NEW",
  /** No such endpoint (404 `page not found`, as dockerd). */
  PageNotFound: "ERR_ENGINE_PAGE_NOT_FOUND",
  /** Containers, networks, volumes, build, exec, swarm…: berth serves images only (501). */
  ImagesOnly: "ERR_ENGINE_IMAGES_ONLY",
  /** An image endpoint berth does not serve yet (501). */
  NotImplemented: "ERR_ENGINE_NOT_IMPLEMENTED",
  /** `filters` that are not JSON of either encoding (400). */
  InvalidFilters: "ERR_ENGINE_INVALID_FILTERS",
  /** A malformed query parameter or reference (400). */
  InvalidParameter: "ERR_ENGINE_INVALID_PARAMETER",
  /** A failure without a class of its own (500; the message is not sent). */
  Internal: "ERR_ENGINE_INTERNAL",
} as const;

/** One of {@link EngineErrorCode}. */
export type EngineErrorCodeValue = (typeof EngineErrorCode)[keyof typeof EngineErrorCode];

const NOT_IMPLEMENTED_CODES: ReadonlySet<string> = new Set([EngineErrorCode.ImagesOnly, EngineErrorCode.NotImplemented]);

/** The HTTP status of an error, by class (and code for the face's 501s), as moby's errdefs map them. */
export function statusOf(err: unknown): number {
  if (err instanceof BerthError && NOT_IMPLEMENTED_CODES.has(err.code)) return 501;
  // a registry refused the client's credential (dockerd: errdefs.Unauthorized)
  if (err instanceof BerthError && err.code === "ERR_REGISTRY_UNAUTHORIZED") return 401;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof InvalidArgumentError) return 400;
  if (err instanceof AlreadyExistsError || err instanceof FailedPreconditionError) return 409;
  if (err instanceof UnavailableError) return 503;
  if (err instanceof DataIntegrityError) return 500;
  return 500;
}

/** The message sent for an error: its own for berth's typed errors, a generic one otherwise (no internals leak). */
export function messageOf(err: unknown): string {
  if (err instanceof BerthError) return err.message;
  return "berth: internal error (see the server log)";
}

/** "berth serves images only" for an endpoint of another Docker object kind. */
export function imagesOnly(what: string): FailedPreconditionError {
  return new FailedPreconditionError(
    `berth serves images only: ${what} are not supported (berth stores images and runs no containers; use dockerd or podman for them)`,
    { code: EngineErrorCode.ImagesOnly },
  );
}

/** An image endpoint not served yet, said honestly. */
export function notImplemented(what: string, why: string): FailedPreconditionError {
  return new FailedPreconditionError(`berth does not implement ${what} yet: ${why}`, { code: EngineErrorCode.NotImplemented });
}

/** dockerd's `page not found`. */
export function pageNotFound(): NotFoundError {
  return new NotFoundError("page not found", { code: EngineErrorCode.PageNotFound });
}

/**
 * Write an error response (nothing sent yet): JSON `{"message": …}`, or plain
 * text when the path named a version below 1.24 (dockerd does that so very old
 * clients print a readable line).
 */
export function writeError(res: ServerResponse, err: unknown, opts: { plainText?: boolean } = {}): void {
  const status = statusOf(err);
  const message = messageOf(err);
  // dockerd's JSON encoder ends the body with a newline; so does its plain-text error
  const body = opts.plainText ? `${message}\n` : `${JSON.stringify({ message })}\n`;
  res.statusCode = status;
  res.setHeader("Content-Type", opts.plainText ? "text/plain; charset=utf-8" : "application/json");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}
