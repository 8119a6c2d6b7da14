import { BerthError } from "@berth/digest";
import { ARGUMENT_ERROR_CODES } from "@berth/image-service/errors";

/** Exit codes of the berth command (stable; scripts may branch on them). */
export const EXIT = {
  ok: 0,
  /** Something failed that has no more specific code. */
  failure: 1,
  /** Bad command-line usage (unknown flag, missing argument). */
  usage: 2,
  /** An image, layer, tag or file named by the user does not exist. */
  notFound: 3,
  /** The operation conflicts with the state of the store (tag exists, image in use). */
  conflict: 4,
  /** Input (archive, JSON, digest, reference) is malformed, hostile or does not verify. */
  invalidInput: 5,
  /** Reading or writing failed (disk, permissions, daemon unreachable). */
  io: 6,
  /** Interrupted (Ctrl-C). */
  interrupted: 130,
} as const;

/** A usage error detected by berth itself (bad flag values and the like). */
export class UsageError extends BerthError {
  constructor(message: string) {
    super("ERR_USAGE", message);
  }
}

/**
 * Ctrl-C or SIGTERM stopped the work: whatever it had started was undone
 * ("nothing was kept"), or, when the signal came after the work was done and
 * could no longer be undone, `kept` says what stays.
 */
export class InterruptedError extends BerthError {
  constructor(signal: string, kept?: string) {
    super("ERR_INTERRUPTED", `interrupted (${signal}); ${kept ?? "nothing was kept"}`);
  }
}

/** Codes that are about the input's content whatever class carries them. */
const INVALID_INPUT_CODES = new Set(["ERR_NOT_IN_ARCHIVE", "ERR_NO_PARENT_CHAIN", "ERR_INVALID_PARENT_CHAIN"]);

const IO_CODES = new Set(["ENOENT", "EACCES", "EPERM", "ENOSPC", "EIO", "EISDIR", "ENOTDIR", "EROFS", "EEXIST", "EPIPE", "ECONNREFUSED"]);

/** Map any thrown value to a berth exit code. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof BerthError) {
    if (err.code === "ERR_USAGE" || ARGUMENT_ERROR_CODES.has(err.code)) return EXIT.usage;
    if (err.code === "ERR_INTERRUPTED") return EXIT.interrupted;
    // a reference inside an archive that leads nowhere is a malformed archive, not a missing image
    if (INVALID_INPUT_CODES.has(err.code)) return EXIT.invalidInput;
    // a daemon's 404 (no such image in the daemon) is a not-found, other daemon errors are I/O
    if ((err as { status?: unknown }).status === 404) return EXIT.notFound;
    switch (err.name) {
      case "NotFoundError":
        return EXIT.notFound;
      case "AlreadyExistsError":
      case "FailedPreconditionError":
        return EXIT.conflict;
      case "UnavailableError":
        return EXIT.io;
      default:
        break;
    }
    let proto = Object.getPrototypeOf(err);
    while (proto && proto !== BerthError.prototype) {
      const n = proto.constructor?.name;
      if (n === "NotFoundError") return EXIT.notFound;
      if (n === "AlreadyExistsError" || n === "FailedPreconditionError") return EXIT.conflict;
      if (n === "InvalidArgumentError" || n === "DataIntegrityError") return EXIT.invalidInput;
      if (n === "UnavailableError") return EXIT.io;
      proto = Object.getPrototypeOf(proto);
    }
    if (/NOT_FOUND/.test(err.code)) return EXIT.notFound;
    if (/CONFLICT|EXISTS|IN_USE/.test(err.code)) return EXIT.conflict;
    return EXIT.invalidInput;
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (code === "ENOENT") return EXIT.notFound;
    if (IO_CODES.has(code)) return EXIT.io;
    if (code.startsWith("commander.")) return EXIT.usage;
  }
  return EXIT.failure;
}

/** One-line description of an error for `berth: <what>: <why>`. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && IO_CODES.has(code)) {
      const path = (err as { path?: string }).path;
      const syscallMsg = err.message.replace(/^[A-Z]+: /, "");
      return path ? `${path}: ${syscallMsg.split(",")[0]}` : syscallMsg;
    }
    return err.message;
  }
  return String(err);
}

/** The error code shown with --debug. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}
