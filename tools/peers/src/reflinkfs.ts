/**
 * A small file system with reflinks — XFS, or btrfs (which also has
 * subvolume snapshots) — in a sparse file on a loop device: where
 * `copyFile(…, COPYFILE_FICLONE)` shares blocks instead of copying them. The
 * machines here have ext4 (no reflinks), so tests and benchmarks of
 * copy-on-write clones mount one of these. Needs root (`mount -o loop`) and
 * `mkfs.xfs` (Debian's xfsprogs) or `mkfs.btrfs` (btrfs-progs).
 * @module
 */
import { mkdir, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { requirePeer } from "./commands.js";
import { execOk } from "./exec.js";

/** A mounted reflink file system; `unmount` detaches it and removes its image file. */
export interface ReflinkFs {
  /** The mount point (empty, root-owned, on the new file system). */
  dir: string;
  unmount(): Promise<void>;
}

/** Options of {@link mountReflinkFs}. */
export interface ReflinkFsOptions {
  /** Size of the file system in MiB (the backing file is sparse). Default 1024. */
  sizeMiB?: number;
  /** Which file system. Default `xfs`. */
  type?: "xfs" | "btrfs";
}

/**
 * Make and mount an XFS (or btrfs) file system with reflinks under `base`
 * (`base/<type>.img` and `base/mnt`). Returns `{ skipped }` with the reason
 * when it cannot: not root, or the kernel will not mount it (no loop device,
 * no btrfs module) — as the tmpfs of the full-disk tests. A missing mkfs is a
 * missing peer: it throws `ERR_PEER_UNAVAILABLE` under `BERTH_REQUIRE_PEERS=1`.
 */
export async function mountReflinkFs(base: string, opts: ReflinkFsOptions = {}): Promise<ReflinkFs | { skipped: string }> {
  if (process.getuid?.() !== 0) return { skipped: "mounting a loop file system needs root" };
  const type = opts.type ?? "xfs";
  const mkfs = await requirePeer(`mkfs.${type}`);
  if (!mkfs) return { skipped: `mkfs.${type} is not installed (apt-get install -y ${type === "xfs" ? "xfsprogs" : "btrfs-progs"})` };
  const image = join(base, `${type}.img`);
  const dir = join(base, "mnt");
  await mkdir(dir, { recursive: true });
  await writeFile(image, "");
  await truncate(image, (opts.sizeMiB ?? 1024) * 2 ** 20);
  try {
    await execOk(mkfs, type === "xfs" ? ["-q", "-m", "reflink=1", image] : ["-q", image]);
    await execOk("mount", ["-o", "loop", image, dir]);
  } catch (err) {
    await rm(image, { force: true });
    return { skipped: `cannot make or mount it: ${(err as Error).message.split("\n")[0]}` };
  }
  return {
    dir,
    unmount: async () => {
      await execOk("umount", [dir]);
      await rm(image, { force: true });
    },
  };
}
