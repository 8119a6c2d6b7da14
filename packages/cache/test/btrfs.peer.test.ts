/**
 * The snapshotter on btrfs (a loop file system from `@berth/peers`): trees are
 * subvolumes and `prepare` on a committed parent is a snapshot of it — no
 * inode copied, the child's blocks shared with the parent — while writing
 * into the child still leaves the parent alone, a whole chain extracts
 * through snapshots, and removal and cleanup of killed prepares still work.
 * Skips when it cannot mount one (not root, no loop device, no btrfs in the
 * kernel); a missing mkfs.btrfs fails under BERTH_REQUIRE_PEERS=1.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, link, lstat, mkdir, open, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { openStore } from "@berth/image-store";
import { ownerToken } from "@berth/layer-store";
import { describe, expect, it } from "vitest";
import { ensureChainSnapshot } from "../src/snapshot/chain.js";
import { copyTree } from "../src/snapshot/clone.js";
import { openSnapshotter } from "../src/snapshot/snapshotter.js";
import { createSubvolume, isSubvolume } from "../src/snapshot/subvolume.js";
import { loopFs, usedBytes } from "./helpers.js";
import { listTree, tarOf } from "./snapshot-util.js";

const fs = await loopFs("btrfs");

describe.skipIf("skipped" in fs)("the snapshotter on btrfs", () => {
  const mnt = () => (fs as { dir: string }).dir;

  it("makes trees subvolumes and prepares a child as a snapshot: nothing copied, the parent safe from the child's writes", async () => {
    const snaps = await openSnapshotter({ root: join(mnt(), "a") });
    const dir = await snaps.prepare("work");
    expect(await isSubvolume(dir)).toBe(true);
    const data = randomBytes(64 << 20);
    await mkdir(join(dir, "etc"), { mode: 0o2711 });
    await writeFile(join(dir, "big.bin"), data);
    await writeFile(join(dir, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    await chmod(join(dir, "etc/passwd"), 0o4750);
    await link(join(dir, "etc/passwd"), join(dir, "etc/passwd.link"));
    await symlink("/nowhere", join(dir, "dangling"));
    await snaps.commit("base", "work");
    const parent = snaps.treeOf(await snaps.stat("base"));

    execFileSync("sync"); // the parent's blocks allocated before measuring (btrfs allocates at commit)
    const before = await usedBytes(mnt());
    const child = await snaps.prepare("child", "base");
    expect(snaps.lastClone).toEqual({ tool: "btrfs" });
    expect((await usedBytes(mnt())) - before).toBeLessThan(4 << 20); // a full copy would be 64 MiB
    expect(await isSubvolume(child)).toBe(true);
    expect(await listTree(child, { owners: true, mtimes: true })).toEqual(await listTree(parent, { owners: true, mtimes: true }));
    const [a, b] = await Promise.all([lstat(join(child, "etc/passwd")), lstat(join(child, "etc/passwd.link"))]);
    expect(a.ino).toBe(b.ino);

    // copy-on-write: the child's first MiB changes and a file goes, the parent keeps both
    const fh = await open(join(child, "big.bin"), "r+");
    await fh.write(Buffer.alloc(1 << 20, 7), 0, 1 << 20, 0);
    await fh.close();
    await writeFile(join(child, "etc/passwd"), "changed\n");
    expect((await readFile(join(parent, "big.bin"))).equals(data)).toBe(true);
    expect(await readFile(join(parent, "etc/passwd.link"), "utf8")).toBe("root:x:0:0::/root:/bin/sh\n");
    expect((await readFile(join(child, "big.bin"))).subarray(0, 1 << 20).every((x) => x === 7)).toBe(true);

    // a grandchild of a committed child is a snapshot too; removing a snapshot removes its subvolume
    await snaps.commit("second", "child");
    await snaps.prepare("third", "second");
    expect(snaps.lastClone).toEqual({ tool: "btrfs" });
    await snaps.remove("third");
    expect((await snaps.walk()).map((r) => r.key).sort()).toEqual(["base", "second"]);
    expect((await readdir(snaps.path("fs"))).length).toBe(2);
    expect(await readdir(snaps.path("tmp"))).toEqual([]);
  });

  it("falls back to copying where a parent is a plain directory, and says so", async () => {
    const plain = join(mnt(), "plain");
    await mkdir(plain);
    await writeFile(join(plain, "f"), "x");
    expect((await copyTree(plain, join(mnt(), "plain-copy"))).tool).toBe("cp");
    await expect(copyTree(plain, join(mnt(), "forced"), { tool: "btrfs" })).rejects.toMatchObject({ code: "ENOTSUP" });
  });

  it("cleanup removes a subvolume a killed prepare left in tmp/", async () => {
    const snaps = await openSnapshotter({ root: join(mnt(), "b") });
    const left = snaps.path("tmp", `${ownerToken({ pid: 999_999_999, start: "1" })}.abcdef`);
    expect(await createSubvolume(left)).toBe(true);
    await writeFile(join(left, "half"), "x");
    const { removed } = await snaps.cleanup();
    expect(removed).toEqual([`tmp/${left.split("/").pop()}`]);
    expect(await readdir(snaps.path("tmp"))).toEqual([]);
  });

  it("extracts a chain through snapshots: each layer's tree as on any file system", async () => {
    const root = join(mnt(), "store");
    const store = await openStore({ root });
    try {
      const snaps = await openSnapshotter({ root });
      const l1 = await store.layers.register([gzipSync(await tarOf([{ name: "a/keep", body: "1" }, { name: "a/gone", body: "2" }, { name: "d/x", body: "3" }]))]);
      const l2 = await store.layers.register([await tarOf([{ name: "a/.wh.gone", mode: 0 }, { name: "d/", type: "directory" }, { name: "d/.wh..wh..opq", mode: 0 }, { name: "d/y", body: "4" }])], l1.chainID);
      const top = await ensureChainSnapshot(store, snaps, l2.chainID);
      expect(snaps.lastClone).toEqual({ tool: "btrfs" });
      expect((await listTree(top.path)).map((l) => l.split(" ").slice(0, 2).join(" "))).toEqual(["a d", "a/keep f", "d d", "d/y f"]);
      expect((await listTree(await snaps.mounts(l1.chainID))).map((l) => l.split(" ")[0])).toEqual(["a", "a/gone", "a/keep", "d", "d/x"]);
    } finally {
      await store.close();
    }
  });
});
