/**
 * `prepare` on a file system with reflinks (XFS in a loop file, from
 * `@berth/peers`): the child's files share the parent's blocks, so a second
 * writable snapshot on a large parent costs almost no space, and writing into
 * the child still leaves the parent alone. Skips when it cannot mount one (not
 * root, no loop device); a missing mkfs.xfs fails under BERTH_REQUIRE_PEERS=1.
 */
import { randomBytes } from "node:crypto";
import { open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { copyTree } from "../src/snapshot/clone.js";
import { openSnapshotter } from "../src/snapshot/snapshotter.js";
import { loopFs, usedBytes } from "./helpers.js";

const fs = await loopFs("xfs");

describe.skipIf("skipped" in fs)("prepare on a reflink file system", () => {
  it("shares the parent's blocks, and a write into the child copies only what it changes", async () => {
    const root = (fs as { dir: string }).dir;
    const snaps = await openSnapshotter({ root: join(root, "snapshots") });
    const dir = await snaps.prepare("work");
    const data = randomBytes(64 << 20);
    await writeFile(join(dir, "big.bin"), data);
    await snaps.commit("base", "work");
    const parent = snaps.treeOf(await snaps.stat("base"));

    const before = await usedBytes(root);
    const child = await snaps.prepare("child", "base");
    const grown = (await usedBytes(root)) - before;
    expect(snaps.lastClone).toEqual({ tool: "cp" });
    expect(grown).toBeLessThan(4 << 20); // a full copy would be 64 MiB
    // Node's own copy (where there is no GNU cp) clones too
    const mark = await usedBytes(root);
    await copyTree(parent, join(root, "by-node"), { tool: "node" });
    expect((await usedBytes(root)) - mark).toBeLessThan(4 << 20);

    // copy-on-write: the child's first MiB changes, the parent's does not
    const fh = await open(join(child, "big.bin"), "r+");
    await fh.write(Buffer.alloc(1 << 20, 7), 0, 1 << 20, 0);
    await fh.close();
    expect((await readFile(join(parent, "big.bin"))).equals(data)).toBe(true);
    const changed = await readFile(join(child, "big.bin"));
    expect(changed.subarray(0, 1 << 20).every((b) => b === 7)).toBe(true);
    expect(changed.subarray(1 << 20).equals(data.subarray(1 << 20))).toBe(true);
  });
});
