import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { PeerLockError } from "./errors.js";

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * True when process `pid` exists and is not a zombie. (On machines whose PID 1
 * does not reap, a killed daemon stays a zombie and `kill(pid, 0)` still succeeds.)
 */
export async function isAlive(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const st = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Reads a pid file; undefined when missing or garbled. */
export async function readPid(file: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await readFile(file, "utf8")).trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Sends `signal` to `pid` and waits up to `timeoutMs` for it to exit; then SIGKILL. */
export async function terminate(pid: number, timeoutMs = 20_000): Promise<void> {
  if (!(await isAlive(pid))) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isAlive(pid))) return;
    await sleep(100);
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  for (let i = 0; i < 50 && (await isAlive(pid)); i++) await sleep(100);
}

/**
 * Runs `fn` while holding a cross-process lock: the file `lockFile` created with
 * O_EXCL holding `<pid> <token>`. A lock whose owner process is gone is broken.
 * Waits up to `timeoutMs` for the lock.
 */
export async function withLock<T>(lockFile: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(lockFile), { recursive: true });
  const token = `${process.pid} ${randomBytes(8).toString("hex")}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(lockFile, "wx");
      await fh.writeFile(token);
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    // Held by someone: break it if the holder is gone.
    let holder = "";
    try {
      holder = await readFile(lockFile, "utf8");
    } catch {
      continue; // vanished meanwhile; retry at once
    }
    const pid = Number.parseInt(holder.split(" ")[0] ?? "", 10);
    let stale = false;
    if (Number.isInteger(pid) && pid > 0) stale = !(await isAlive(pid));
    else {
      // Garbled or half-written: stale once it is old enough that the writer must have finished.
      const st = await stat(lockFile).catch(() => undefined);
      stale = st !== undefined && Date.now() - st.mtimeMs > 5_000;
    }
    if (stale) {
      // Remove only what we read, so two breakers cannot both win.
      const again = await readFile(lockFile, "utf8").catch(() => undefined);
      if (again === holder) await rm(lockFile, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new PeerLockError(`lock ${lockFile} is held by process ${holder.trim()} for more than ${timeoutMs} ms`, {
        details: { lockFile, holder },
      });
    }
    await sleep(100 + Math.floor(Math.random() * 100));
  }
  try {
    return await fn();
  } finally {
    const now = await readFile(lockFile, "utf8").catch(() => undefined);
    if (now === token) await rm(lockFile, { force: true });
  }
}
