import { randomBytes } from "node:crypto";
import { constants as fsConstants, promises as fsp } from "node:fs";
import { readFileSync } from "node:fs";
import path from "node:path";

/** Suffix of temporary files written by {@link writeFileAtomic}; `open()` and fsck remove stale ones. */
export const TEMP_SUFFIX = ".berth-tmp";

/**
 * fsync a directory so that entries created, renamed or removed in it survive
 * a power loss. Errors other than "not supported" are rethrown.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, fsConstants.O_RDONLY);
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Some filesystems (and platforms) refuse fsync on directories.
    if (code !== "EINVAL" && code !== "ENOTSUP" && code !== "EPERM" && code !== "EISDIR") throw err;
  } finally {
    await fh?.close();
  }
}

/** A name for a temporary file beside `target`, unique across processes, marked with its owner. */
export function tempPathFor(target: string): string {
  return `${target}.${ownerToken()}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`;
}

/**
 * Write `data` to `file` atomically: write a temporary file beside it, fsync
 * it, rename it over `file`, fsync the directory. Readers see either the old
 * or the new content, never a torn write, and after a crash at any moment the
 * file holds one of the two (a leftover `*.berth-tmp` file is garbage that
 * `openLayerStore` and fsck remove).
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempPathFor(file);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, "wx", 0o644);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, file);
  } catch (err) {
    await fh?.close().catch(() => {});
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/**
 * Create `dir` and its parents (no error when it is a directory already).
 * One plain mkdir per level, not Node's `recursive`: that one reports ENOENT
 * where the cause is EROFS or EACCES (a read-only store root), and never
 * returns where a parent cannot appear (Node 20 retries `/proc/x/y` forever).
 * A plain mkdir names the real cause, and each level is tried once.
 */
export async function mkdirp(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && (await fsp.stat(dir).catch(() => undefined))?.isDirectory()) return;
    const parent = path.dirname(dir);
    if (code !== "ENOENT" || parent === dir) throw err;
    await mkdirp(parent);
  }
  try {
    await fsp.mkdir(dir);
  } catch (err) {
    // made meanwhile by another process: fine if it is a directory
    if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !(await fsp.stat(dir)).isDirectory()) throw err;
  }
}

/** Read a whole file, or `undefined` when it does not exist. */
export async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await fsp.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Directory entries, or `[]` when the directory does not exist. */
export async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** True when `file` exists. */
export async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/**
 * Start time of a process (clock ticks since boot, field 22 of
 * `/proc/<pid>/stat`), used with the pid to tell a live owner from a reused
 * pid. `undefined` where /proc is unavailable.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may contain spaces.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19]; // field 22 overall; fields after ")" start at field 3
  } catch {
    return undefined;
  }
}

/** Identity of a process: pid plus start time (or "-" where unknown). */
export interface ProcessOwner {
  pid: number;
  start: string;
}

let selfOwner: ProcessOwner | undefined;

/** The {@link ProcessOwner} of this process. */
export function currentOwner(): ProcessOwner {
  selfOwner ??= { pid: process.pid, start: processStartTime(process.pid) ?? "-" };
  return selfOwner;
}

/**
 * True when the process that recorded `owner` still runs: the pid exists and,
 * where the start time is known, it is the same process (not a reused pid).
 */
export function isOwnerAlive(owner: ProcessOwner): boolean {
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return false;
  if (owner.pid === process.pid) return owner.start === currentOwner().start;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (owner.start === "-") return true;
  const start = processStartTime(owner.pid);
  return start === undefined || start === owner.start;
}

/** Encode an owner into a file-name-safe token `<pid>-<start>`. */
export function ownerToken(owner: ProcessOwner = currentOwner()): string {
  return `${owner.pid}-${owner.start}`;
}

/** Parse an owner token made by {@link ownerToken}; `undefined` when malformed. */
export function parseOwnerToken(token: string): ProcessOwner | undefined {
  const m = /^(\d+)-(\d+|-)$/.exec(token);
  if (!m) return undefined;
  return { pid: Number(m[1]), start: m[2]! };
}
