/**
 * btrfs subvolumes for the snapshotter's trees, as containerd's btrfs
 * snapshotter uses them. Where the snapshotter's directory is on btrfs and
 * btrfs-progs' `btrfs` is installed, a tree without a parent is made a
 * subvolume, and a child is a writable snapshot of its parent's subvolume:
 * one ioctl whatever the size of the tree (no inode is copied; blocks and
 * metadata are shared copy-on-write), so writing into the child never
 * changes the parent. A snapshot is atomic: a prepare killed during it leaves
 * a whole snapshot in `tmp/` or none, which cleanup removes as any tree.
 *
 * No privilege is needed to create or snapshot subvolumes one owns, nor to
 * remove one with `rm` (an empty subvolume goes with `rmdir` since Linux
 * 4.18). As root {@link removeTree} uses `btrfs subvolume delete`, which
 * unlinks the whole tree at once and leaves freeing its blocks to the kernel.
 *
 * Everything here answers `false` where it does not apply (another file
 * system, no `btrfs`, a parent that is a plain directory made before), and
 * the caller falls back to copying.
 * @module
 */
import { execFile } from "node:child_process";
import { chmod, lstat, rm, statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { programVersion } from "./programs.js";

const run = promisify(execFile);

/** `statfs` type of btrfs. */
const BTRFS_SUPER_MAGIC = 0x9123683e;
/** The inode number of every subvolume's root directory (`BTRFS_FIRST_FREE_OBJECTID`). */
const SUBVOLUME_ROOT_INO = 256;

/** Whether btrfs-progs' `btrfs` runs here. */
async function haveBtrfs(): Promise<boolean> {
  return (await programVersion("btrfs"))?.includes("btrfs-progs") === true;
}

/** True when `dir` is on a btrfs file system. */
export async function onBtrfs(dir: string): Promise<boolean> {
  return (await statfs(dir)).type === BTRFS_SUPER_MAGIC;
}

/** True when `dir` is the root of a btrfs subvolume (or snapshot). */
export async function isSubvolume(dir: string): Promise<boolean> {
  const st = await lstat(dir);
  return st.isDirectory() && st.ino === SUBVOLUME_ROOT_INO && (await onBtrfs(dir));
}

async function btrfs(args: string[]): Promise<void> {
  try {
    await run("btrfs", args);
  } catch (err) {
    const said = ((err as { stderr?: string }).stderr ?? "").trim().split("\n")[0] ?? "";
    throw Object.assign(new Error(`btrfs ${args.slice(0, 2).join(" ")} failed${said ? `: ${said}` : ""}`), {
      code: /No space left/i.test(said) ? "ENOSPC" : "EBTRFS",
    });
  }
}

/**
 * Make `dst` (which must not exist; its parent must, on btrfs) a new empty
 * subvolume with mode 0755. False, with nothing made, where there is no
 * btrfs or no `btrfs` command.
 */
export async function createSubvolume(dst: string): Promise<boolean> {
  if (!(await haveBtrfs()) || !(await onBtrfs(dirname(dst)))) return false;
  await btrfs(["subvolume", "create", dst]);
  await chmod(dst, 0o755);
  return true;
}

/**
 * Make `dst` (which must not exist) a writable snapshot of the subvolume
 * `src`. False, with nothing made, when `src` is not a subvolume or there is
 * no `btrfs` command.
 */
export async function snapshotSubvolume(src: string, dst: string): Promise<boolean> {
  if (!(await haveBtrfs()) || !(await isSubvolume(src))) return false;
  await btrfs(["subvolume", "snapshot", src, dst]);
  return true;
}

/**
 * Remove the tree `dir` (nothing when it is gone): a subvolume with
 * `btrfs subvolume delete` as root, else (or when that fails, e.g. a
 * subvolume nested inside) as `rm -rf` does.
 */
export async function removeTree(dir: string): Promise<void> {
  if (process.getuid?.() === 0 && (await haveBtrfs()) && (await isSubvolume(dir).catch(() => false))) {
    if (await btrfs(["subvolume", "delete", dir]).then(() => true, () => false)) return;
  }
  await rm(dir, { recursive: true, force: true });
}
