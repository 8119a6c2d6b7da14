/**
 * A small XFS file system with reflinks, in a sparse file on a loop device:
 * where `copyFile(…, COPYFILE_FICLONE)` shares blocks instead of copying
 * them. The machines here have ext4 (no reflinks), so tests and benchmarks of
 * copy-on-write clones mount one of these. Needs root (`mount -o loop`) and
 * `mkfs.xfs` (Debian's xfsprogs).
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
}

/**
 * Make and mount an XFS file system with reflinks under `base` (`base/xfs.img`
 * and `base/mnt`). Returns `{ skipped }` with the reason when it cannot: not
 * root, or the kernel will not mount it (no loop device) — as the tmpfs of the
 * full-disk tests. A missing mkfs.xfs is a missing peer: it throws
 * `ERR_PEER_UNAVAILABLE` under `BERTH_REQUIRE_PEERS=1`.
 */
export async function mountReflinkFs(base: string, opts: ReflinkFsOptions = {}): Promise<ReflinkFs | { skipped: string }> {
  if (process.getuid?.() !== 0) return { skipped: "mounting a loop file system needs root" };
  const mkfs = await requirePeer("mkfs.xfs");
  if (!mkfs) return { skipped: "mkfs.xfs is not installed (apt-get install -y xfsprogs)" };
  const image = join(base, "xfs.img");
  const dir = join(base, "mnt");
  await mkdir(dir, { recursive: true });
  await writeFile(image, "");
  await truncate(image, (opts.sizeMiB ?? 1024) * 2 ** 20);
  try {
    await execOk(mkfs, ["-q", "-m", "reflink=1", image]);
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
