import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { openStore, type Store } from "@berth/image-store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listTree, tarOf } from "../../test/snapshot-util.js";
import { ensureChainSnapshot } from "./chain.js";
import { openSnapshotter, type Snapshotter } from "./snapshotter.js";

let root: string;
let snaps: Snapshotter;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-snap-"));
  snaps = await openSnapshotter({ root });
});
afterEach(() => rm(root, { recursive: true, force: true }));

async function committedBase(): Promise<string> {
  const dir = await snaps.prepare("work");
  await mkdir(join(dir, "etc"));
  await writeFile(join(dir, "etc/os-release"), "ID=test\n");
  await writeFile(join(dir, "big"), Buffer.alloc(100_000, 1));
  await snaps.commit("base", "work");
  return dir;
}

describe("Snapshotter", () => {
  it("prepares on a committed parent with a copy the child may change freely", async () => {
    const baseDir = await committedBase();
    expect(await snaps.find("work")).toBeUndefined();
    const child = await snaps.prepare("child", "base");
    expect(child).not.toBe(baseDir);
    expect(await listTree(child)).toEqual(await listTree(baseDir));
    // a copy, not a hard link: writing into the child leaves the parent alone
    expect((await stat(join(child, "big"))).ino).not.toBe((await stat(join(baseDir, "big"))).ino);
    await writeFile(join(child, "etc/os-release"), "ID=changed\n");
    await rm(join(child, "big"));
    expect(await readFile(join(baseDir, "etc/os-release"), "utf8")).toBe("ID=test\n");
    expect((await stat(join(baseDir, "big"))).size).toBe(100_000);
    expect(snaps.lastClone).toEqual({ tool: "cp" }); // GNU cp, as on every Linux with coreutils
  });

  it("a view is the committed parent's own tree, and nothing is copied", async () => {
    const baseDir = await committedBase();
    expect(await snaps.view("look", "base")).toBe(baseDir);
    expect((await snaps.stat("look")).kind).toBe("view");
    await snaps.remove("look");
    expect((await stat(join(baseDir, "big"))).size).toBe(100_000);
  });

  it("refuses what containerd refuses", async () => {
    await committedBase();
    await expect(snaps.prepare("base")).rejects.toMatchObject({ code: "ERR_SNAPSHOT_EXISTS" });
    await expect(snaps.prepare("x", "nope")).rejects.toMatchObject({ code: "ERR_SNAPSHOT_NOT_FOUND" });
    await snaps.prepare("active", "base");
    await expect(snaps.prepare("y", "active")).rejects.toMatchObject({ code: "ERR_SNAPSHOT_KIND" });
    await expect(snaps.commit("z", "base")).rejects.toMatchObject({ code: "ERR_SNAPSHOT_KIND" });
    await expect(snaps.commit("base", "active")).rejects.toMatchObject({ code: "ERR_SNAPSHOT_EXISTS" });
    await expect(snaps.remove("base")).rejects.toMatchObject({ code: "ERR_SNAPSHOT_HAS_CHILDREN" });
    await expect(snaps.prepare("")).rejects.toMatchObject({ code: "ERR_SNAPSHOT_KEY" });
    await snaps.remove("active");
    await snaps.remove("base");
    expect(await snaps.walk()).toEqual([]);
    expect(await readdir(snaps.path("fs"))).toEqual([]);
  });

  it("usage counts blocks and inodes, hard links once, and is kept for committed snapshots", async () => {
    const dir = await snaps.prepare("u");
    await writeFile(join(dir, "a"), Buffer.alloc(64 * 1024, 1));
    await import("node:fs/promises").then((f) => f.link(join(dir, "a"), join(dir, "b")));
    const u = await snaps.usage("u");
    expect(u.inodes).toBe(2); // the root and one file
    expect(u.size).toBeGreaterThanOrEqual(64 * 1024);
    await snaps.commit("c", "u");
    const again = await snaps.usage("c");
    expect(again).toEqual(u);
    expect((await snaps.stat("c")).usage).toEqual(u);
  });

  it("records survive a restart", async () => {
    await committedBase();
    await snaps.prepare("child", "base");
    const reopened = await openSnapshotter({ root });
    const all = (await reopened.walk()).map((r) => [r.key, r.kind, r.parent ?? null]).sort();
    expect(all).toEqual([
      ["base", "committed", null],
      ["child", "active", "base"],
    ]);
    expect(await readFile(join(await reopened.mounts("child"), "etc/os-release"), "utf8")).toBe("ID=test\n");
  });

  it("what a crash leaves is removed by cleanup and by the next prepare", async () => {
    await committedBase();
    const baseRec = await snaps.stat("base");
    // a prepare killed while copying: its tree in tmp/, owned by a process that is gone
    await mkdir(snaps.path("tmp", "999999999-1.abcdef/deep"), { recursive: true });
    // killed after the rename, before its record: a tree nothing names
    await mkdir(snaps.path("fs", "0123456789abcdef01234567/etc"), { recursive: true });
    // a commit cut between its two record writes: the prepared record beside the committed one
    const { createHash } = await import("node:crypto");
    const stale = { version: 1, key: "half-committed", kind: "active", id: baseRec.id, created: baseRec.created };
    await writeFile(snaps.path("records", `${createHash("sha256").update("half-committed").digest("hex")}.json`), JSON.stringify(stale));
    // a record write cut short
    await writeFile(snaps.path("records", "x.json.123-1.aaaa.berth-tmp"), "{");
    const res = await snaps.cleanup();
    expect(res.removed.sort()).toEqual(["fs/0123456789abcdef01234567", "records/half-committed", "tmp/999999999-1.abcdef"]);
    expect(await readdir(snaps.path("tmp"))).toEqual([]);
    expect(await readdir(snaps.path("fs"))).toEqual([baseRec.id]);
    expect((await snaps.walk()).map((r) => r.key)).toEqual(["base"]);
    expect((await readdir(snaps.path("records"))).length).toBe(1);
    // the committed tree is intact
    expect(await readFile(join(snaps.treeOf(baseRec), "etc/os-release"), "utf8")).toBe("ID=test\n");
    // and the next prepare cleans up by itself
    await mkdir(snaps.path("fs", "fedcba9876543210fedcba98"));
    await snaps.prepare("next", "base");
    expect((await readdir(snaps.path("fs"))).sort()).not.toContain("fedcba9876543210fedcba98");
  });

  it("trees in tmp/ of live processes (another one, or this one's prepare in progress) are left alone", async () => {
    const { ownerToken } = await import("@berth/layer-store");
    const other = snaps.path("tmp", `${process.ppid}--.building`); // start time unknown: alive while the pid is
    const mine = snaps.path("tmp", `${ownerToken()}.building`);
    await mkdir(other);
    await mkdir(mine);
    expect((await snaps.cleanup()).removed).toEqual([]);
    expect((await lstat(other)).isDirectory()).toBe(true);
    expect((await lstat(mine)).isDirectory()).toBe(true);
  });
});

describe("ensureChainSnapshot", () => {
  let store: Store;
  beforeEach(async () => {
    store = await openStore({ root });
  });
  afterEach(() => store.close());

  it("extracts a chain bottom-up once, shares committed layers, and each tree is the layers applied in order", async () => {
    const l1 = await store.layers.register([gzipSync(await tarOf([{ name: "a/keep", body: "1" }, { name: "a/gone", body: "2" }, { name: "d/x", body: "3" }]))]);
    const l2 = await store.layers.register([await tarOf([{ name: "a/.wh.gone", mode: 0 }, { name: "d/", type: "directory" }, { name: "d/.wh..wh..opq", mode: 0 }, { name: "d/y", body: "4" }])], l1.chainID);
    const l2b = await store.layers.register([await tarOf([{ name: "other", body: "5" }])], l1.chainID);
    const seen: string[] = [];
    const top = await ensureChainSnapshot(store, snaps, l2.chainID, { onLayer: (l) => seen.push(l.chainID) });
    expect(top.extracted).toEqual([l1.chainID, l2.chainID]);
    expect(seen).toEqual([l1.chainID, l2.chainID]);
    expect((await listTree(top.path)).map((l) => l.split(" ").slice(0, 2).join(" "))).toEqual(["a d", "a/keep f", "d d", "d/y f"]);
    // the bottom snapshot stays as layer 1 left it
    expect((await listTree(await snaps.mounts(l1.chainID))).map((l) => l.split(" ")[0])).toEqual(["a", "a/gone", "a/keep", "d", "d/x"]);
    // a second image on the same base extracts only its own layer; asking again extracts nothing
    expect((await ensureChainSnapshot(store, snaps, l2b.chainID)).extracted).toEqual([l2b.chainID]);
    expect((await ensureChainSnapshot(store, snaps, l2.chainID)).extracted).toEqual([]);
    expect((await snaps.walk()).filter((r) => r.kind === "committed").length).toBe(3);
    expect((await snaps.stat(l2.chainID)).labels).toEqual({ "berth.diffID": l2.diffID });
  });

  it("a layer that fails to apply leaves no snapshot behind", async () => {
    const l1 = await store.layers.register([await tarOf([{ name: "evil", type: "symlink", linkname: "/etc" }])]);
    const l2 = await store.layers.register([await tarOf([{ name: "evil/passwd", body: "x" }])], l1.chainID);
    await expect(ensureChainSnapshot(store, snaps, l2.chainID)).rejects.toMatchObject({ code: "ERR_UNSAFE_LINK" });
    expect((await snaps.walk()).map((r) => r.key)).toEqual([l1.chainID]);
    expect((await readdir(snaps.path("fs"))).length).toBe(1);
    expect(await readdir(snaps.path("tmp"))).toEqual([]);
  });
});
