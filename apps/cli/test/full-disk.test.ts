/**
 * A store on a small tmpfs that fills during import and load, and a store
 * root that turns read-only (issue 17). Needs root (to mount a tmpfs); CI runs
 * as root, elsewhere the tests skip and say so.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berth, berthOk, expectOneErrorLine, makeRootfs, tempDir } from "./helpers.js";

const tmp = tempDir("berth-full-");
const mnt = join(tmp.dir, "mnt");
const root = join(mnt, "store");

function tryMount(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root to mount a tmpfs";
  try {
    mkdirSync(mnt, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt], { stdio: "pipe" });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs: ${(err as Error).message.split("\n")[0]}`;
  }
}
const skip = tryMount();
if (skip) console.warn(`full-disk tests skipped: ${skip}`);
const remount = (opts: string) => execFileSync("mount", ["-o", `remount,${opts}`, mnt]);

afterAll(() => {
  if (!skip) execFileSync("umount", [mnt]);
  tmp.cleanup();
});

describe.skipIf(skip !== undefined)("a store on a full disk", () => {
  const big = join(tmp.dir, "big");
  const archive = join(tmp.dir, "big.tar");
  beforeAll(async () => {
    mkdirSync(big);
    writeFileSync(join(big, "big.bin"), randomBytes(30_000_000));
    const elsewhere = join(tmp.dir, "elsewhere");
    await berthOk(["import", big, "big:1"], { root: elsewhere });
    await berthOk(["save", "-o", archive, "big:1"], { root: elsewhere });
    await berthOk(["import", makeRootfs(join(tmp.dir, "rootfs")), "base:1"], { root });
  });

  it("import and load that fill the disk fail with exit 6, leave nothing behind, lose nothing, and succeed once there is room", async () => {
    for (const args of [["import", "-q", big, "big:1"], ["load", "-q", "-i", archive]]) {
      const r = await berth(args, { root });
      expect(r.code, r.stderr).toBe(6);
      expect(expectOneErrorLine(r.stderr)).toMatch(/no space left on device/);
      expect((await berthOk(["images", "--format", "{{.Repository}}:{{.Tag}}"], { root })).stdout).toBe("base:1\n");
      // nothing half-written: not even garbage
      expect(JSON.parse((await berthOk(["fsck", "--format", "json"], { root })).stdout).problems).toEqual([]);
    }
    remount("size=96m");
    try {
      expect((await berthOk(["load", "-q", "-i", archive], { root })).stdout).toBe("Loaded image: big:1\n");
      expect(JSON.parse((await berthOk(["fsck", "--format", "json"], { root })).stdout).problems).toEqual([]);
    } finally {
      await berthOk(["rmi", "big:1"], { root });
      remount("size=24m");
    }
  });

  it("a read-only root: writes fail at once with exit 6 and the file system's word; reads still work", async () => {
    remount("ro");
    try {
      for (const args of [["tag", "base:1", "base:2"], ["load", "-q", "-i", archive], ["import", "-q", big, "x:1"], ["rmi", "base:1"]]) {
        const r = await berth(args, { root });
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(6);
        expect(expectOneErrorLine(r.stderr)).toMatch(/read-only file system/);
      }
      expect((await berthOk(["images", "--format", "{{.Repository}}:{{.Tag}}"], { root })).stdout).toBe("base:1\n");
    } finally {
      remount("rw");
    }
    expect(JSON.parse((await berthOk(["fsck", "--format", "json"], { root })).stdout).problems).toEqual([]);
  });
});
