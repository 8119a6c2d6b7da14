import { execFileSync } from "node:child_process";
import { lutimes, mkdir, readdir, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type PathChange, layerTree } from "../src/index.js";
import { freshService, makeDir } from "./helpers.js";

const EPOCH0 = new Date(0);
const EMPTY_TAR_DIFFID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/** What an unpack of a berth-imported layer gives: every mtime 0 (the layer's), owners and modes as on disk. */
async function asUnpacked(root: string): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      if (e.isSymbolicLink()) await lutimes(p, EPOCH0, EPOCH0);
      else await utimes(p, EPOCH0, EPOCH0);
    }
  };
  await walk(root);
}

const lines = (changes: PathChange[]) => changes.map((c) => `${{ added: "A", changed: "C", removed: "D" }[c.kind]} /${c.path}`);

describe("commit a directory on a base image", () => {
  it("deletes a file, replaces directories, adds and changes files: one new layer with whiteouts and an opaque marker", async () => {
    const { svc, store, dir } = await freshService();
    const src = await makeDir(dir, "rootfs", {
      "hello.txt": "hello",
      "olddir/a": "a",
      "olddir/b/c": "c",
      "swapdir/x": "x",
      "keep/k": "k",
      "etc/motd": "welcome",
    });
    await symlink("hello.txt", join(src, "greeting"));
    const base = await svc.import(src, { tags: ["base:1"] });
    // the edited rootfs: the base's tree as an unpack leaves it, then edited
    execFileSync("cp", ["-a", src, join(dir, "edit")]);
    const edit = join(dir, "edit");
    await asUnpacked(edit);
    await rm(join(edit, "hello.txt"));
    await rm(join(edit, "olddir"), { recursive: true });
    await mkdir(join(edit, "olddir"));
    await writeFile(join(edit, "olddir", "fresh"), "new contents");
    await rm(join(edit, "swapdir"), { recursive: true });
    await writeFile(join(edit, "swapdir"), "a file now");
    await writeFile(join(edit, "etc", "motd"), "changed motd");
    await writeFile(join(edit, "added.txt"), "added");
    await writeFile(join(edit, "keep", "k"), "K"); // same size; the layer's fixed mtime makes its header equal the base's

    const committed = await svc.commit({ dir: edit, base: "base:1", tags: ["edited:1"], changes: ['CMD ["/bin/sh"]'], message: "edit" });
    const c = committed.image.config;
    expect(c.rootfs.diff_ids).toEqual([...base.image.config.rootfs.diff_ids, committed.layers[0]!.diffID]);
    expect(c.config?.Cmd).toEqual(["/bin/sh"]);
    expect(c.history?.at(-1)).toMatchObject({ created_by: "berth commit edit", comment: "edit" });
    expect(await store.images.getParent(committed.id)).toBe(base.id);
    expect(await store.references.resolve("edited:1")).toBe(committed.id);

    const entries = (await layerTree(store, committed.layers[0]!.chainID)).entries.map((e) => `${e.type} ${e.path}`);
    expect(entries).toEqual([
      "file added.txt",
      "dir etc",
      "file etc/motd",
      "dir olddir",
      "opaque olddir",
      "file olddir/fresh",
      "whiteout hello.txt", // in the place of the name it removes
      "dir keep",
      "file keep/k",
      "file swapdir",
    ].sort((a, b) => order(a) - order(b)));
    expect(committed.counts).toEqual({ added: 2, changed: 6, removed: 3 });

    // docker diff of the new layer, and of the two images, say the same
    // keep/k is listed although its header equals the base's: the commit's layer wrote it
    const expected = ["A /added.txt", "C /etc", "C /etc/motd", "D /hello.txt", "C /keep", "C /keep/k", "C /olddir", "D /olddir/a", "D /olddir/b", "A /olddir/fresh", "C /swapdir"];
    const perLayer = await svc.diff("edited:1");
    expect(perLayer.layers).toHaveLength(2);
    expect(lines(perLayer.layers[1]!.changes)).toEqual(expected);
    expect(perLayer.layers[1]!.createdBy).toBe("berth commit edit");
    expect(lines(perLayer.layers[0]!.changes)).toContain("A /olddir/b/c");
    expect(lines((await svc.diffImages("base:1", "edited:1")).changes)).toEqual(expected);
    expect((await svc.diffImages("edited:1", "edited:1")).changes).toEqual([]);
    expect((await store.fsck()).ok).toBe(true);

    function order(line: string): number {
      // the tar order of the layer, as the writer emits it
      return ["file added.txt", "dir etc", "file etc/motd", "whiteout hello.txt", "dir keep", "file keep/k", "dir olddir", "opaque olddir", "file olddir/fresh", "file swapdir"].indexOf(line);
    }
  });

  it("an unchanged directory makes an empty layer, as docker commit of an unchanged container does", async () => {
    const { svc, dir } = await freshService();
    const src = await makeDir(dir, "rootfs", { "a/b": "b", c: "c" });
    await svc.import(src, { tags: ["base:1"] });
    await asUnpacked(src);
    const committed = await svc.commit({ dir: src, base: "base:1" });
    expect(committed.layers[0]!.diffID).toBe(EMPTY_TAR_DIFFID);
    expect(committed.counts).toEqual({ added: 0, changed: 0, removed: 0 });
    expect((await svc.diff(committed.id)).layers[1]!.changes).toEqual([]);
  });

  it("is deterministic: the same edit gives the same image ID", async () => {
    const { svc, dir } = await freshService();
    const src = await makeDir(dir, "rootfs", { "a/b": "b", c: "c" });
    await svc.import(src, { tags: ["base:1"], created: new Date(0) });
    await asUnpacked(src);
    await writeFile(join(src, "c"), "edited");
    await rm(join(src, "a", "b"));
    const created = new Date("2024-01-01T00:00:00Z");
    const one = await svc.commit({ dir: src, base: "base:1", created });
    const two = await svc.commit({ dir: src, base: "base:1", created });
    expect(two.id).toBe(one.id);
    expect(two.layers[0]!.existed).toBe(true);
  });

  it("without a base, every path is added (an import that keeps owners)", async () => {
    const { svc, dir } = await freshService();
    const src = await makeDir(dir, "rootfs", { "a/b": "b" });
    const committed = await svc.commit({ dir: src });
    expect(lines((await svc.diff(committed.id)).layers[0]!.changes)).toEqual(["A /a", "A /a/b"]);
  });

  it("refuses a missing directory or base and writes nothing", async () => {
    const { svc, store, dir } = await freshService();
    const src = await makeDir(dir, "rootfs", { a: "a" });
    await svc.import(src, { tags: ["base:1"] });
    const before = (await store.layers.list()).length;
    await expect(svc.commit({ dir: join(dir, "nope"), base: "base:1" })).rejects.toMatchObject({ code: "ERR_NOT_A_DIRECTORY" });
    await expect(svc.commit({ dir: src, base: "nosuch:1" })).rejects.toMatchObject({ code: "ERR_IMAGE_NOT_FOUND" });
    await expect(svc.commit({ dir: src, base: "base:1", changes: ["BOGUS x"] })).rejects.toMatchObject({ code: "ERR_INVALID_CHANGE" });
    expect((await store.layers.list()).length).toBe(before);
  });
});
