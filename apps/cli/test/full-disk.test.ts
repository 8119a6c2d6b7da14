/**
 * A store on a small tmpfs that fills during import, load, pull (from
 * docker-registry), a push into `berth serve` and commit, and a store root
 * that turns read-only (issue 17). Needs root (to mount a tmpfs); CI runs as
 * root, elsewhere the tests skip and say so.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { registry } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BERTH, berth, berthOk, expectOneErrorLine, makeRootfs, tempDir } from "./helpers.js";

const tmp = tempDir("berth-full-");
const mnt = join(tmp.dir, "mnt");
const root = join(mnt, "store");

/** A second small tmpfs: pull, push-receive and commit fill it. */
const mnt2 = join(tmp.dir, "mnt2");
const root2 = join(mnt2, "store");

function tryMount(at: string): string | undefined {
  if (process.getuid?.() !== 0) return "needs root to mount a tmpfs";
  try {
    mkdirSync(at, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", at], { stdio: "pipe" });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs: ${(err as Error).message.split("\n")[0]}`;
  }
}
const skip = tryMount(mnt) ?? tryMount(mnt2);
if (skip) console.warn(`full-disk tests skipped: ${skip}`);
const remount = (opts: string, at = mnt) => execFileSync("mount", ["-o", `remount,${opts}`, at]);
const reg = skip ? undefined : await registry();

afterAll(async () => {
  if (!skip) {
    execFileSync("umount", [mnt]);
    execFileSync("umount", [mnt2]);
  }
  await reg?.stop();
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

describe.skipIf(skip !== undefined || !reg)("a full disk during pull, commit, and a push into berth serve", () => {
  const elsewhere = join(tmp.dir, "elsewhere2");
  const pulled = `${reg?.host}/full/big:1`;
  const tags = async () => `${(await berthOk(["images", "--format", "{{.Repository}}:{{.Tag}}"], { root: root2 })).stdout.trim().split("\n").sort().join("\n")}\n`;
  const clean = async () => expect(JSON.parse((await berthOk(["fsck", "--format", "json"], { root: root2 })).stdout).problems).toEqual([]);
  /** Run with room: 96 MiB, then remove what it made and shrink again. */
  const withRoom = async (fn: () => Promise<void>, made: string) => {
    remount("size=96m", mnt2);
    try {
      await fn();
      await clean();
    } finally {
      await berthOk(["rmi", made], { root: root2 });
      remount("size=24m", mnt2);
    }
  };

  beforeAll(async () => {
    const big = join(tmp.dir, "big2");
    mkdirSync(big);
    writeFileSync(join(big, "big.bin"), randomBytes(30_000_000));
    await berthOk(["import", "-q", big, pulled], { root: elsewhere });
    await berthOk(["push", "-q", "--compression", "none", pulled], { root: elsewhere });
    await berthOk(["import", "-q", makeRootfs(join(tmp.dir, "rootfs2")), "base:1"], { root: root2 });
  });

  it("pull: exit 6, no image, nothing lost; once there is room the pull succeeds", async () => {
    const r = await berth(["pull", "-q", pulled], { root: root2 });
    expect(r.code, r.stderr).toBe(6);
    expect(expectOneErrorLine(r.stderr)).toMatch(/no space left on device/);
    expect(await tags()).toBe("base:1\n");
    await clean();
    await withRoom(async () => {
      expect((await berthOk(["pull", "-q", pulled], { root: root2 })).stdout.trim()).toBe(pulled);
    }, pulled);
  });

  it("commit: exit 6, no image, nothing lost; once there is room the commit succeeds", async () => {
    const dir = join(tmp.dir, "edited");
    cpSync(join(tmp.dir, "rootfs2"), dir, { recursive: true });
    writeFileSync(join(dir, "added.bin"), randomBytes(30_000_000));
    const r = await berth(["commit", "-q", dir, "--base", "base:1", "-t", "committed:1"], { root: root2 });
    expect(r.code, r.stderr).toBe(6);
    expect(expectOneErrorLine(r.stderr)).toMatch(/no space left on device/);
    expect(await tags()).toBe("base:1\n");
    await clean();
    await withRoom(async () => {
      await berthOk(["commit", "-q", dir, "--base", "base:1", "-t", "committed:1"], { root: root2 });
      expect(await tags()).toBe("base:1\ncommitted:1\n");
    }, "committed:1");
  });

  it("a push into berth serve: the push fails, the server stays up, nothing half-written; once there is room the push succeeds", async () => {
    const server = spawn(process.execPath, [BERTH, "serve", "-p", "0"], { env: { ...process.env, BERTH_ROOT: root2 }, stdio: ["ignore", "ignore", "pipe"] });
    const exited = new Promise<void>((r) => server.once("exit", () => r()));
    try {
      let err = "";
      const port = await new Promise<number>((resolve, reject) => {
        server.stderr!.on("data", (c: Buffer) => {
          err += c.toString();
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
          if (m) resolve(Number(m[1]));
        });
        void exited.then(() => reject(new Error(`berth serve exited:\n${err}`)));
      });
      const name = `127.0.0.1:${port}/pushed:1`;
      await berthOk(["tag", pulled, name], { root: elsewhere });
      const r = await berth(["push", "-q", "--compression", "none", name], { root: elsewhere });
      expect(r.code, r.stderr).not.toBe(0);
      expect(expectOneErrorLine(r.stderr)).toMatch(/no space left on device|insufficient storage/i);
      expect((await fetch(`http://127.0.0.1:${port}/v2/`)).status).toBe(200);
      expect(await tags()).toBe("base:1\n");
      await clean();
      // last: the blobs pushed stay in the repository (its grace period, as distribution keeps them until its GC), so no shrinking after
      remount("size=96m", mnt2);
      await berthOk(["push", "-q", "--compression", "none", name], { root: elsewhere });
      expect(await tags()).toBe("base:1\npushed:1\n");
      await clean();
    } finally {
      server.kill("SIGTERM");
      await exited;
    }
  });
});
