/**
 * The server's own error codes (starting, options, auth material), in one
 * registry. Errors are berth error classes from `@berth/digest`; callers
 * test `code`.
 * @module
 */
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from "@berth/digest";

/** Every code `@berth/server` throws from its own API. */
export const SERVER_ERROR_CODES = {
  /** InvalidArgumentError: an option has a bad value (names the option). */
  invalidOption: "ERR_SERVER_OPTION",
  /** FailedPreconditionError: listening off loopback without auth, and `allowRemoteWithoutAuth` not set. */
  unsafeListen: "ERR_SERVER_UNSAFE_LISTEN",
  /** UnavailableError: the address or unix socket is in use by a live server. */
  addressInUse: "ERR_SERVER_ADDRESS_IN_USE",
  /** UnavailableError: listening failed for another reason (permission, bad address). */
  listen: "ERR_SERVER_LISTEN",
  /** InvalidArgumentError: the TLS certificate or key cannot be read or used. */
  tls: "ERR_SERVER_TLS",
  /** InvalidArgumentError: the htpasswd file cannot be read, or a line is not `user:bcrypt-hash`. */
  htpasswd: "ERR_SERVER_HTPASSWD",
  /** InvalidArgumentError: the token signing key file cannot be read or is too short. */
  tokenKey: "ERR_SERVER_TOKEN_KEY",
  /** InvalidArgumentError: an explorer API request (`/ui/api/…`) with a malformed path or query (400). */
  uiBadRequest: "ERR_SERVER_UI_BAD_REQUEST",
  /** UnavailableError: the reason a request's AbortSignal fires when a shutdown stops waiting for it. */
  stopped: "ERR_SERVER_STOPPED",
} as const;

/** The abort reason of requests a shutdown stops. */
export function stoppedError(): UnavailableError {
  return new UnavailableError("the server is shutting down", { code: SERVER_ERROR_CODES.stopped });
}

/** A bad option value. */
export function optionError(option: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`server option ${option}: ${why}`, { code: SERVER_ERROR_CODES.invalidOption, details: { option } });
}

/** Listening off loopback without auth. */
export function unsafeListenError(host: string): FailedPreconditionError {
  return new FailedPreconditionError(
    `refusing to listen on ${host} without auth: anyone who can reach it could push and delete; ` +
      "configure auth (htpasswd), or set allowRemoteWithoutAuth (--insecure-no-auth) if that is what you want",
    { code: SERVER_ERROR_CODES.unsafeListen, details: { host } },
  );
}

/** A listen failure, classified. */
export function listenError(where: string, cause: unknown): UnavailableError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EADDRINUSE") {
    return new UnavailableError(`cannot listen on ${where}: address already in use`, { code: SERVER_ERROR_CODES.addressInUse, cause, details: { where } });
  }
  return new UnavailableError(`cannot listen on ${where}: ${(cause as Error)?.message ?? String(cause)}`, {
    code: SERVER_ERROR_CODES.listen,
    cause,
    details: { where },
  });
}
