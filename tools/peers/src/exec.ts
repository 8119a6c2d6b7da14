import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { PeerCommandError, PeerTimeoutError, PeerUnavailableError } from "./errors.js";

/** Options for {@link exec}. */
export interface ExecOptions {
  /** Bytes written to the command's stdin (stdin is closed either way). */
  input?: string | Uint8Array;
  /** Stream stdout into this file instead of collecting it (`stdout` is then ""). */
  stdoutFile?: string;
  /** Environment of the command (default: this process's environment). */
  env?: NodeJS.ProcessEnv;
  /** Working directory. */
  cwd?: string;
  /** Kill the command (SIGKILL) after this many milliseconds. Default 120 000. */
  timeoutMs?: number;
}

/** What a finished command printed and how it exited. */
export interface ExecResult {
  /** Collected stdout ("" when `stdoutFile` was given). */
  stdout: string;
  /** Collected stderr. */
  stderr: string;
  /** stdout and stderr interleaved in arrival order. */
  output: string;
  /** Exit status (128 + signal number when killed by a signal). */
  code: number;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** `cmd a b c` for messages. */
export function describeCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
}

/**
 * Runs a command to completion without a shell, with a timeout. Resolves with
 * the exit code whatever it is; rejects only when the command cannot be started
 * ({@link PeerUnavailableError}) or times out ({@link PeerTimeoutError}).
 */
export function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const what = describeCommand(cmd, args);
  return new Promise<ExecResult>((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const all: Buffer[] = [];
    let settled = false;
    let timedOut = false;
    const file = opts.stdoutFile ? createWriteStream(opts.stdoutFile) : undefined;
    const fileDone = file
      ? new Promise<void>((res, rej) => {
          file.on("finish", () => res());
          file.on("error", rej);
        })
      : Promise.resolve();
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    timer.unref();

    if (file) child.stdout.pipe(file);
    else
      child.stdout.on("data", (b: Buffer) => {
        out.push(b);
        all.push(b);
      });
    child.stderr.on("data", (b: Buffer) => {
      err.push(b);
      all.push(b);
    });
    child.stdin.on("error", () => {
      /* the command may exit without reading its input; its exit code tells */
    });
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e.code === "ENOENT" || e.code === "EACCES") {
        reject(new PeerUnavailableError(`cannot run ${cmd}: ${e.message}`, { cause: e, details: { command: what } }));
      } else {
        reject(new PeerCommandError(`${what}: ${e.message}`, { cause: e, details: { command: what } }));
      }
    });
    child.on("close", (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fileDone.then(
        () => {
          const result: ExecResult = {
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(err).toString("utf8"),
            output: Buffer.concat(all).toString("utf8"),
            code: code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0),
          };
          if (timedOut) {
            reject(
              new PeerTimeoutError(`${what} did not finish within ${timeoutMs} ms; output so far:\n${tail(result.output)}`, {
                details: { command: what, ...result },
              }),
            );
          } else resolve(result);
        },
        (e: unknown) =>
          reject(new PeerCommandError(`${what}: cannot write stdout to ${opts.stdoutFile}`, { cause: e })),
      );
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/**
 * Like {@link exec} but rejects with {@link PeerCommandError} (stderr tail in the
 * message) when the command exits non-zero.
 */
export async function execOk(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) {
    const what = describeCommand(cmd, args);
    throw new PeerCommandError(`${what} exited with code ${r.code}:\n${tail(r.output)}`, {
      details: { command: what, ...r },
    });
  }
  return r;
}

/** The last `lines` lines of `text` (for error messages). */
export function tail(text: string, lines = 30): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}
