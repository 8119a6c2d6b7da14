import { execFileSync } from "node:child_process";
import { chmod, link, lstat, lutimes, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listTree } from "../../test/snapshot-util.js";
import { copyTree } from "./clone.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-clone-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const isRoot = process.getuid?.() === 0;

/** A tree with what a layer holds: directories with odd modes, files, a hard link, symlinks (one dangling), old mtimes, owners and a fifo as root. */
async function sample(): Promise<string> {
  const src = join(dir, "src");
  await mkdir(join(src, "etc/conf.d"), { recursive: true });
  await writeFile(join(src, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
  await writeFile(join(src, "etc/conf.d/app"), Buffer.alloc(200_000, 7));
  await chmod(join(src, "etc/conf.d/app"), 0o4750);
  await link(join(src, "etc/passwd"), join(src, "etc/passwd.link"));
  await symlink("passwd", join(src, "etc/relative"));
  await symlink("/nowhere/at/all", join(src, "dangling"));
  await chmod(join(src, "etc/conf.d"), 0o2711);
  if (isRoot) {
    execFileSync("mkfifo", [join(src, "fifo")]);
    execFileSync("chown", ["-h", "1234:5678", join(src, "etc/relative"), join(src, "etc/passwd")]);
  }
  for (const p of ["etc/passwd", "etc/conf.d/app", "etc/relative", "dangling"]) await lutimes(join(src, p), 1_000_000, 1_000_000);
  return src;
}

describe.each(["cp", "node"] as const)("copyTree with %s", (tool) => {
  it("copies the tree whole: modes, owners as root, mtimes, links kept as links, hard links as hard links", async () => {
    const src = await sample();
    const dst = join(dir, "dst");
    const r = await copyTree(src, dst, { tool });
    expect(r.tool).toBe(tool);
    expect(await listTree(dst, { owners: isRoot, mtimes: true })).toEqual(await listTree(src, { owners: isRoot, mtimes: true }));
    const [a, b] = await Promise.all([lstat(join(dst, "etc/passwd")), lstat(join(dst, "etc/passwd.link"))]);
    expect(a.ino).toBe(b.ino);
    // a copy, never a link between the trees: the parent is safe from writes into the child
    expect(a.ino).not.toBe((await lstat(join(src, "etc/passwd"))).ino);
  });

  it("refuses a target that exists, and says what failed", async () => {
    const src = await sample();
    await mkdir(join(dir, "dst"));
    await expect(copyTree(src, join(dir, "dst"), { tool })).rejects.toMatchObject({ code: "EEXIST" });
    await expect(copyTree(join(dir, "missing"), join(dir, "dst2"), { tool })).rejects.toThrow(/missing/);
  });
});
