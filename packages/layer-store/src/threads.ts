/**
 * What berth's worker threads share: errors as they cross threads, and how a
 * worker script is found and started. Used by this package's off-thread
 * writer and by `@berth/docker-archive`'s load workers.
 *
 * Kept free of the store's other modules: a worker imports this and should
 * start fast.
 * @module
 */
import { existsSync } from "node:fs";
import { Worker, type WorkerOptions } from "node:worker_threads";
import * as errors from "@berth/digest";

/** An error as it crosses threads: enough to rebuild the typed error. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  details?: Record<string, unknown>;
  errno?: number;
  syscall?: string;
}

/** Flatten an error for postMessage (which keeps no class). */
export function toWire(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: "Error", message: String(err) };
  const e = err as Error & { code?: unknown; details?: unknown; errno?: unknown; syscall?: unknown };
  return {
    name: e.name,
    message: e.message,
    ...(typeof e.code === "string" ? { code: e.code } : {}),
    ...(e.details && typeof e.details === "object" ? { details: e.details as Record<string, unknown> } : {}),
    ...(typeof e.errno === "number" ? { errno: e.errno } : {}),
    ...(typeof e.syscall === "string" ? { syscall: e.syscall } : {}),
  };
}

type ErrorClass = new (message: string, options?: { code?: string; details?: Record<string, unknown> }) => errors.BerthError;
/** berth's error classes by name: each takes (message, { code, details }). */
const CLASSES: Record<string, ErrorClass> = {
  NotFoundError: errors.NotFoundError,
  AlreadyExistsError: errors.AlreadyExistsError,
  InvalidArgumentError: errors.InvalidArgumentError,
  FailedPreconditionError: errors.FailedPreconditionError,
  UnavailableError: errors.UnavailableError,
  DataIntegrityError: errors.DataIntegrityError,
  DigestMismatchError: errors.DigestMismatchError,
  SizeMismatchError: errors.SizeMismatchError,
  DecompressionLimitError: errors.DecompressionLimitError,
  CorruptDataError: errors.CorruptDataError,
};

/** Rebuild an error of {@link toWire}: berth's typed errors keep their class and code, system errors their code. */
export function fromWire(w: WireError): Error {
  const cls = CLASSES[w.name];
  if (cls) return new cls(w.message, { ...(w.code ? { code: w.code } : {}), ...(w.details ? { details: w.details } : {}) });
  const err = new Error(w.message) as NodeJS.ErrnoException;
  if (w.code) err.code = w.code;
  if (w.errno !== undefined) err.errno = w.errno;
  if (w.syscall) err.syscall = w.syscall;
  return err;
}

/**
 * The built worker script `name` (e.g. `write-worker.js`) of the module at
 * `moduleUrl`: beside it once built (or bundled); tests that run the
 * TypeScript sources use the package's build (`../dist/`).
 */
export function workerScript(name: string, moduleUrl: string): URL {
  const here = new URL(`./${name}`, moduleUrl);
  return existsSync(here) ? here : new URL(`../dist/${name}`, moduleUrl);
}

/** Flags of the parent a worker must not get, each with its value when given apart (`-e CODE`). */
const NOT_FOR_WORKERS = new Set(["--conditions", "-C", "--input-type", "--eval", "-e", "--print", "-p"]);

/**
 * A worker runs berth's built JavaScript: it keeps the parent's flags but
 * not its export conditions (a development setup's `--conditions=source`, as
 * under vitest, would point its imports at TypeScript sources) nor a program
 * given as text (`node --input-type=module -e CODE`: a worker given
 * `--input-type` with a script file refuses to start).
 */
export function workerExecArgv(argv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf("=");
    if (NOT_FOR_WORKERS.has(eq < 0 ? a : a.slice(0, eq))) {
      if (eq < 0) i++; // its value came as the next argument
    } else out.push(a);
  }
  return out;
}

/** The flags {@link startWorker} found a worker takes (refused ones left out), once known. */
let acceptedArgv: string[] | undefined;

/**
 * Start a worker on `script` with the parent's flags ({@link workerExecArgv}).
 * Flags that only a process takes — V8's (`--max-old-space-size`,
 * `--expose-gc`) and per-process ones (`--title`) — make Node refuse the
 * worker, naming them: those are left out and the worker started without
 * them (a tool run as `node --max-old-space-size=4096` embeds berth too).
 */
export function startWorker(script: URL, options: Omit<WorkerOptions, "execArgv"> = {}): Worker {
  let argv = acceptedArgv ?? workerExecArgv();
  for (;;) {
    try {
      const worker = new Worker(script, { ...options, execArgv: argv });
      acceptedArgv = argv;
      return worker;
    } catch (err) {
      const named = /invalid execArgv flags: (.*)$/.exec((err as Error).message)?.[1];
      if ((err as NodeJS.ErrnoException).code !== "ERR_WORKER_INVALID_EXEC_ARGV" || named === undefined) throw err;
      const refused = new Set(named.split(", "));
      const kept = argv.filter((a) => !refused.has(a));
      if (kept.length === argv.length) throw err;
      argv = kept;
    }
  }
}

