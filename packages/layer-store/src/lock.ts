import { promises as fsp } from "node:fs";
import path from "node:path";
import { InvalidArgumentError, UnavailableError } from "@berth/digest";
import lockfile from "proper-lockfile";
import { randomBytes } from "node:crypto";
import { currentOwner, isOwnerAlive, mkdirp, ownerToken, parseOwnerToken, TEMP_SUFFIX, tempPathFor } from "./fsutil.js";
import { LayerStoreErrorCode } from "./errors.js";

/** Options of {@link withLock}. */
export interface LockOptions {
  /** Give up after this many milliseconds (`UnavailableError` code `ERR_LOCK_TIMEOUT`). Default 120 000. */
  timeoutMs?: number;
}

/**
 * A lock without a readable owner whose mtime (refreshed every UPDATE_MS by
 * its holder) is older than this is stale. It is the fallback: a lock whose
 * owner file names a dead process is broken at once.
 */
const STALE_MS = 10_000;
const UPDATE_MS = 2_000;
/**
 * A lock without an owner file, this old, whose maker is gone (no live
 * process has an intent file for it) is broken: a live maker writes its owner
 * within milliseconds of the `mkdir`, and records its intent before it.
 */
const MAKER_GRACE_MS = 1_000;
const LIBRARY_STALE_MS = 24 * 3600_000;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/;

const inProcess = new Map<string, Promise<unknown>>();

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Directory holding the lock files of a store root. */
export function locksDir(root: string): string {
  return path.join(root, "locks");
}

/** The owner file lives inside the lock directory, so it always describes that very lock. */
function ownerFileOf(dir: string, name: string): string {
  return path.join(dir, `${name}.lock`, "owner");
}

async function readOwner(file: string): Promise<string | undefined> {
  try {
    return (await fsp.readFile(file, "utf8")).trim();
  } catch {
    return undefined;
  }
}

/** The intent file a process keeps while it makes the lock `name` (from before its `mkdir` to its owner file). */
function intentPathOf(dir: string, name: string): string {
  return tempPathFor(path.join(dir, `${name}.intent`));
}

/**
 * True when no live process may be making the lock `name`: none has an
 * intent file for it (those of dead processes are removed on the way).
 */
async function noLiveMaker(dir: string, name: string): Promise<boolean> {
  const prefix = `${name}.intent.`;
  let none = true;
  for (const f of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!f.startsWith(prefix) || !f.endsWith(TEMP_SUFFIX)) continue;
    const owner = parseOwnerToken(f.slice(prefix.length).split(".")[0] ?? "");
    if (owner && isOwnerAlive(owner)) none = false;
    else await fsp.rm(path.join(dir, f), { force: true }).catch(() => {});
  }
  return none;
}

async function breakIfOwnerDead(dir: string, name: string): Promise<void> {
  const lockDir = path.join(dir, `${name}.lock`);
  const ownerFile = ownerFileOf(dir, name);
  const token = await readOwner(ownerFile);
  const owner = token === undefined ? undefined : parseOwnerToken(token.split(" ")[0] ?? "");
  /** A lock without an owner is dead when it is old, or a moment old with no live maker. */
  const ownerlessDead = async () => {
    const st = await fsp.stat(lockDir).catch(() => undefined);
    if (st === undefined) return false;
    const age = Date.now() - st.mtimeMs;
    return age > STALE_MS || (age > MAKER_GRACE_MS && (await noLiveMaker(dir, name)));
  };
  if (owner) {
    if (isOwnerAlive(owner)) return;
  } else if (!(await ownerlessDead())) {
    // No (readable) owner yet: the holder may be between mkdir and writing it.
    return;
  }
  // Serialise breakers so two waiters never break a lock a third one just took.
  let releaseBreaker: (() => Promise<void>) | undefined;
  try {
    releaseBreaker = await lockfile.lock(path.join(dir, `${name}.break`), {
      realpath: false,
      stale: 2_000,
      retries: { retries: 20, minTimeout: 5, maxTimeout: 100 },
      onCompromised: () => {},
    });
  } catch {
    return;
  }
  try {
    const again = await readOwner(ownerFile);
    if (again !== token) return; // the lock changed hands meanwhile
    if (!owner && !(await ownerlessDead())) return;
    await fsp.rm(lockDir, { recursive: true, force: true });
  } finally {
    await releaseBreaker().catch(() => {});
  }
}

async function acquire(root: string, name: string, opts: LockOptions): Promise<() => Promise<void>> {
  const dir = locksDir(root);
  await mkdirp(dir);
  const target = path.join(dir, name);
  const ownerFile = ownerFileOf(dir, name);
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let delay = 2;
  for (;;) {
    // recorded before the mkdir and removed once the owner file is written (or the attempt
    // failed): a lock left without an owner by a killed maker is then broken in a second, not ten
    const intent = intentPathOf(dir, name);
    await fsp.writeFile(intent, "");
    try {
      const release = await lockfile.lock(target, {
        lockfilePath: `${target}.lock`,
        realpath: false,
        // Staleness is judged by breakIfOwnerDead (serialised, owner-aware), not by
        // proper-lockfile's unserialised stat-then-rmdir, which can remove a fresh lock.
        stale: LIBRARY_STALE_MS,
        update: UPDATE_MS,
        retries: 0,
        // A compromised lock (event loop blocked past the stale time) must not crash the process.
        onCompromised: () => {},
      });
      // A nonce tells this holding from a later one of the same process.
      const tmp = `${ownerFile}.tmp`;
      await fsp.writeFile(tmp, `${ownerToken(currentOwner())} ${randomBytes(6).toString("hex")}`);
      await fsp.rename(tmp, ownerFile);
      await fsp.rm(intent, { force: true });
      return async () => {
        await fsp.rm(ownerFile, { force: true }).catch(() => {});
        await release().catch(() => {});
      };
    } catch (err) {
      await fsp.rm(intent, { force: true }).catch(() => {});
      if ((err as NodeJS.ErrnoException).code !== "ELOCKED") throw err;
    }
    if (Date.now() > deadline) {
      throw new UnavailableError(`timed out waiting for lock ${JSON.stringify(name)} in ${dir}`, {
        code: LayerStoreErrorCode.LOCK_TIMEOUT,
        details: { root, name },
      });
    }
    await breakIfOwnerDead(dir, name);
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 50);
  }
}

/**
 * Run `fn` while holding the cross-process lock `name` of the store at `root`.
 *
 * Built on proper-lockfile (an atomic `mkdir` of `<root>/locks/<name>.lock`,
 * kept fresh while held). Calls in one process queue in memory; other
 * processes retry with backoff. The holder records itself in
 * `<name>.lock/owner` (pid, process start time, nonce); a lock whose recorded
 * owner is gone (a reused pid does not count) is broken as soon as a waiter
 * sees it. A lock without an owner file (holder killed between `mkdir` and
 * writing it) is broken once it is a second old and no live process has an
 * intent file for it (`<name>.intent.<owner>.…`, written before the `mkdir`,
 * removed after the owner file), else once its mtime is 10 s old (the holder
 * refreshes it every 2 s, proper-lockfile's scheme); a lock of a
 * live but stuck holder is never taken away. Not re-entrant: never call
 * `withLock` for the same name inside `fn`.
 *
 * @throws InvalidArgumentError (`ERR_INVALID_LOCK_NAME`) for a name that is not a plain file name.
 * @throws UnavailableError (`ERR_LOCK_TIMEOUT`) when the lock is not acquired in time.
 */
export async function withLock<T>(root: string, name: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  if (!NAME_RE.test(name)) {
    throw new InvalidArgumentError(`invalid lock name ${JSON.stringify(name)}`, { code: LayerStoreErrorCode.INVALID_LOCK_NAME });
  }
  const key = `${path.resolve(root)}\0${name}`;
  const prev = inProcess.get(key) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => {
    done = resolve;
  });
  const chained = prev.then(() => mine);
  inProcess.set(key, chained);
  try {
    await prev;
    const release = await acquire(root, name, opts);
    try {
      return await fn();
    } finally {
      await release();
    }
  } finally {
    done();
    if (inProcess.get(key) === chained) inProcess.delete(key);
  }
}
