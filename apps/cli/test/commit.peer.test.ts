/**
 * The judge of `berth commit` (issue 16): a base image with a file and
 * directories, a committed layer that deletes the file, replaces a
 * directory by a new one (opaque) and another by a file, loaded into the
 * real dockerd with `berth docker push`; `docker run` of the new image shows
 * the file gone and the directories replaced, and `docker diff` of a
 * container made from it shows nothing. Skips without dockerd, fails under
 * BERTH_REQUIRE_PEERS=1.
 */
import { execFileSync } from "node:child_process";
import { lutimesSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type DockerPeer, dockerd } from "@berth/peers";
import { afterAll, describe, expect, it } from "vitest";
import { berthOk, makeRootfs, tempDir } from "./helpers.js";

const peer: DockerPeer | undefined = await dockerd();
const tmp = tempDir();
const root = join(tmp.dir, "store");
const BASE = `berth-cli-test/commit-base:${process.pid}`;
const TAG = `berth-cli-test/committed:${process.pid}`;

afterAll(async () => {
  if (peer) await peer.docker(["rmi", "-f", TAG, BASE]);
  tmp.cleanup();
});

/** Every mtime 0, as an unpack of a berth-imported layer leaves them. */
function asUnpacked(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) asUnpacked(p);
    if (e.isSymbolicLink()) lutimesSync(p, 0, 0);
    else utimesSync(p, 0, 0);
  }
}

describe.skipIf(!peer)("berth commit judged by the real dockerd", { timeout: 240_000 }, () => {
  const p = peer as DockerPeer;

  it("a committed layer that deletes a file and replaces directories runs as expected in docker", async () => {
    const rootfs = makeRootfs(join(tmp.dir, "rootfs")); // a static busybox: sh, ls, cat
    writeFileSync(join(rootfs, "hello.txt"), "hello\n");
    mkdirSync(join(rootfs, "olddir", "sub"), { recursive: true });
    writeFileSync(join(rootfs, "olddir", "a"), "a\n");
    writeFileSync(join(rootfs, "olddir", "sub", "b"), "b\n");
    mkdirSync(join(rootfs, "swapdir"));
    writeFileSync(join(rootfs, "swapdir", "x"), "x\n");
    await berthOk(["import", rootfs, BASE], { root });

    const edit = join(tmp.dir, "edit");
    execFileSync("cp", ["-a", rootfs, edit]);
    asUnpacked(edit);
    rmSync(join(edit, "hello.txt"));
    rmSync(join(edit, "olddir"), { recursive: true });
    mkdirSync(join(edit, "olddir"));
    writeFileSync(join(edit, "olddir", "fresh"), "fresh\n");
    rmSync(join(edit, "swapdir"), { recursive: true });
    writeFileSync(join(edit, "swapdir"), "a file now\n");
    await berthOk(["commit", edit, "--base", BASE, "-t", TAG, "--change", 'CMD ["/bin/sh"]'], { root });
    expect((await berthOk(["diff", "--layer", "-1", TAG], { root })).stdout).toBe("D /hello.txt\nC /olddir\nD /olddir/a\nA /olddir/fresh\nD /olddir/sub\nC /swapdir\n");

    await berthOk(["docker", "push", TAG], { root, env: p.env });
    const script = "test -e /hello.txt && echo HELLO-PRESENT; ls -A /olddir; echo ---; cat /swapdir; test -d /swapdir && echo SWAP-IS-DIR; echo END";
    const run = await p.run(["run", "--rm", "--network", "none", TAG, "sh", "-c", script]);
    expect(run.stdout).toBe("fresh\n---\na file now\nEND\n");

    // a container made from the image: its writable layer differs from the image in nothing
    const created = (await p.run(["create", "--network", "none", TAG])).stdout.trim();
    try {
      const diff = await p.run(["diff", created]);
      expect(diff.stdout.trim()).toBe("");
      // and the image's filesystem, as dockerd exports it, is the edited rootfs
      const exported = join(tmp.dir, "exported.tar");
      await p.run(["export", "-o", exported, created]);
      const names = execFileSync("tar", ["-tf", exported], { encoding: "utf8" }).split("\n");
      expect(names).toContain("olddir/fresh");
      expect(names).toContain("swapdir");
      expect(names.filter((n) => n.startsWith("olddir/") && n !== "olddir/" && n !== "olddir/fresh")).toEqual([]);
      expect(names.some((n) => n.startsWith("hello.txt") || n.startsWith("swapdir/") || n.includes(".wh."))).toBe(false);
    } finally {
      await p.docker(["rm", "-f", created]);
    }
  });
});
