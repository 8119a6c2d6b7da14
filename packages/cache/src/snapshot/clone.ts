/**
 * Copy a snapshot's tree into a new directory — what `prepare` does on a
 * parent, as containerd's native snapshotter does (`fs.CopyDir`): every
 * file through `copyFile` with `COPYFILE_FICLONE` (a reflink, sharing
 * blocks, where the file system has them: btrfs, XFS with reflink, bcachefs;
 * elsewhere libuv falls back to an in-kernel copy), never a hard link
 * between the two trees, so writing into the copy never changes the parent.
 * Hard links inside the tree stay hard links, symlinks are copied as links,
 * modes, mtimes and (as root) owners are kept; device nodes and fifos are
 * recreated as root and skipped (counted) otherwise.
 * @module
 */
import { execFile } from "node:child_process";
import { constants as C, type Stats } from "node:fs";
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, readdir, readlink, symlink } from "node:fs/promises";
import { promisify } from "node:util";

const run = promisify(execFile);

/** What {@link cloneTree} copied. */
export interface CloneResult {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  special: number;
  /** Device nodes and fifos not recreated (not running as root). */
  skipped: number;
  /** Bytes of regular files (copied or cloned). */
  bytes: number;
}

/** Copies in flight at once (the thread pool has 4 threads; a few more hide the gaps). */
const PARALLEL = 8;

class Limit {
  #free: number;
  readonly #waiting: Array<() => void> = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/**
 * Copy the tree `src` into `dst`, which must not exist (its parent must).
 * @throws the file system's errors (`EEXIST` when `dst` exists)
 */
export async function cloneTree(src: string, dst: string): Promise<CloneResult> {
  const res: CloneResult = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, special: 0, skipped: 0, bytes: 0 };
  const owners = process.getuid?.() === 0;
  const limit = new Limit(PARALLEL);
  const linked = new Map<string, Promise<string>>(); // dev:ino of a multiply linked file → its copy

  const meta = async (to: string, st: Stats, isLink: boolean) => {
    if (owners) await lchown(to, st.uid, st.gid);
    if (!isLink) await chmod(to, st.mode & 0o7777);
    await lutimes(to, st.atime, st.mtime);
  };

  const file = async (from: string, to: string, st: Stats): Promise<void> => {
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = linked.get(key);
      if (first) {
        await link(await first, to);
        res.hardlinks++;
        return;
      }
      let done!: (p: string) => void;
      let fail!: (e: unknown) => void;
      const p = new Promise<string>((resolve, reject) => {
        done = resolve;
        fail = reject;
      });
      p.catch(() => {});
      linked.set(key, p);
      try {
        await copyOne(from, to, st);
        done(to);
      } catch (err) {
        fail(err);
        throw err;
      }
      return;
    }
    await copyOne(from, to, st);
  };

  const copyOne = (from: string, to: string, st: Stats) =>
    limit.run(async () => {
      await copyFile(from, to, C.COPYFILE_FICLONE | C.COPYFILE_EXCL);
      await meta(to, st, false);
      res.files++;
      res.bytes += st.size;
    });

  const dir = async (from: string, to: string, st: Stats): Promise<void> => {
    await mkdir(to, 0o700);
    const names = await readdir(from);
    const jobs: Promise<void>[] = [];
    for (const name of names) jobs.push(entry(`${from}/${name}`, `${to}/${name}`));
    const results = await Promise.allSettled(jobs);
    for (const r of results) if (r.status === "rejected") throw r.reason;
    await meta(to, st, false);
    res.dirs++;
  };

  const entry = async (from: string, to: string): Promise<void> => {
    const st = await limit.run(() => lstat(from));
    if (st.isDirectory()) return dir(from, to, st);
    if (st.isFile()) return file(from, to, st);
    if (st.isSymbolicLink()) {
      await limit.run(async () => {
        await symlink(await readlink(from), to);
        await meta(to, st, true);
      });
      res.symlinks++;
      return;
    }
    if (!owners) {
      res.skipped++;
      return;
    }
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isFIFO()) await run("mkfifo", ["-m", mode, to]);
    else if (st.isCharacterDevice() || st.isBlockDevice()) {
      await run("mknod", ["-m", mode, to, st.isBlockDevice() ? "b" : "c", String(Math.floor(st.rdev / 256) & 0xfff), String((st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00))]);
    } else {
      res.skipped++; // sockets
      return;
    }
    await meta(to, st, false);
    res.special++;
  };

  const st = await lstat(src);
  await dir(src, dst, st);
  res.dirs--; // the root itself is not counted
  return res;
}
