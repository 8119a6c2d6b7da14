/**
 * Errors thrown by the peer launchers.
 *
 * They follow the shape of `@berth/digest`'s `BerthError` (a stable `code`,
 * structured `details`, a `cause`) but are defined here: `@berth/digest` (like
 * every package) has `@berth/peers` as a dev dependency, so importing it back
 * would make a dependency cycle that turbo refuses.
 */

/** Options accepted by every peer error. */
export interface PeerErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Structured context: the command, its exit code, the log file. */
  details?: Record<string, unknown>;
}

/** Base class of the errors `@berth/peers` throws on purpose. */
export class PeerError extends Error {
  /** Stable machine-readable code, e.g. `ERR_PEER_UNAVAILABLE`. */
  readonly code: string;
  /** Structured context (never needed to understand the message). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: PeerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.name = new.target.name;
  }
}

/**
 * A peer (command, daemon) is missing or could not be started.
 * Code `ERR_PEER_UNAVAILABLE`; thrown instead of skipping when `BERTH_REQUIRE_PEERS=1`.
 */
export class PeerUnavailableError extends PeerError {
  constructor(message: string, options?: PeerErrorOptions) {
    super("ERR_PEER_UNAVAILABLE", message, options);
  }
}

/** A peer command exited with a non-zero status. Code `ERR_PEER_COMMAND`. */
export class PeerCommandError extends PeerError {
  constructor(message: string, options?: PeerErrorOptions) {
    super("ERR_PEER_COMMAND", message, options);
  }
}

/** A peer command or daemon did not finish or become ready in time. Code `ERR_PEER_TIMEOUT`. */
export class PeerTimeoutError extends PeerError {
  constructor(message: string, options?: PeerErrorOptions) {
    super("ERR_PEER_TIMEOUT", message, options);
  }
}

/** A cross-process lock could not be taken in time. Code `ERR_PEER_LOCK`. */
export class PeerLockError extends PeerError {
  constructor(message: string, options?: PeerErrorOptions) {
    super("ERR_PEER_LOCK", message, options);
  }
}
