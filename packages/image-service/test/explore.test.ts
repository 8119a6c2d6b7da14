import { execFileSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { digestHex } from "@berth/digest";
import { describe, expect, it } from "vitest";
import * as tarPack from "tar-stream";
import { ImageServiceErrorCode, LAYER_TREE_CACHE_DIR, layerTree, MAX_PATH_DEPTH, readLayerEntries, sameContent } from "../src/index.js";
import { freshService, tarStream } from "./helpers.js";

const bytes = (n: number, c = "x") => c.repeat(n);

describe("explainImage: wasted space and efficiency as dive computes them", () => {
  it("a big file added in one layer and removed in the next", async () => {
    const { svc } = await freshService();
    await svc.import(tarStream({ "bin/sh": "shell", big: bytes(1000) }), { tags: ["base:1"] });
    await svc.build({ base: "base:1", layers: [tarStream({ ".wh.big": "", "etc/x": bytes(8) })], tags: ["waste:1"], createdBy: "RUN rm /big" });
    const x = await svc.explain("waste:1");
    // By hand: paths bin/sh [5], big [1000, whiteout of a file = 0], etc/x [8].
    // Σ minimum = 5 + 0 + 8 = 13; Σ cumulative = 5 + 1000 + 8 = 1013.
    // Wasted = cumulative of the paths seen twice = big: 1000. User bytes = layer 1's = 8.
    expect(x.efficiency.efficiency).toBeCloseTo(13 / 1013, 12);
    expect(x.efficiency.wastedBytes).toBe(1000);
    expect(x.efficiency.reclaimableBytes).toBe(1000);
    expect(x.efficiency.sizeBytes).toBe(1013);
    expect(x.efficiency.userSizeBytes).toBe(8);
    expect(x.efficiency.userWastedPercent).toBe(1000 / 8);
    expect(x.efficiency.files).toEqual([
      {
        path: "big",
        occurrences: [
          { layer: 0, size: 1000, removed: false },
          { layer: 1, size: 0, removed: true },
        ],
        cumulativeSize: 1000,
        reclaimableBytes: 1000,
      },
    ]);
    expect(x.visibleBytes).toBe(13);
    expect(x.layers.map((l) => [l.size, l.createdBy, l.changes])).toEqual([
      [1005, "", { added: 2, changed: 0, removed: 0, addedBytes: 1005, removedBytes: 0 }],
      [8, "RUN rm /big", { added: 1, changed: 0, removed: 1, addedBytes: 8, removedBytes: 1000 }],
    ]);
    const view = await svc.layerView("waste:1", 1, { image: true });
    expect(view.entries.find((e) => e.path === "big")).toMatchObject({ type: "whiteout", status: "removed", removedBytes: 1000 });
    expect(view.image?.map((f) => f.path)).toEqual(["bin", "bin/sh", "etc", "etc/x"]);
  });

  it("a file overwritten by a later layer, and one rewritten unchanged", async () => {
    const { svc } = await freshService();
    await svc.import(tarStream({ "etc/conf": bytes(100), a: bytes(10), same: "same" }), { tags: ["base:1"] });
    await svc.build({ base: "base:1", layers: [tarStream({ "etc/conf": bytes(300, "y"), same: "same" })], tags: ["over:1"] });
    const x = await svc.explain("over:1");
    // By hand: etc/conf [100, 300] min 100; a [10]; same [4, 4] min 4.
    // Σ minimum = 100 + 10 + 4 = 114; Σ cumulative = 400 + 10 + 8 = 418.
    // Wasted (dive: every copy of a path seen twice) = 400 + 8 = 408; hidden bytes = 100 + 4.
    expect(x.efficiency.efficiency).toBeCloseTo(114 / 418, 12);
    expect(x.efficiency.wastedBytes).toBe(408);
    expect(x.efficiency.reclaimableBytes).toBe(104);
    expect(x.efficiency.files.map((f) => [f.path, f.cumulativeSize, f.reclaimableBytes])).toEqual([
      ["etc/conf", 400, 100],
      ["same", 8, 4],
    ]);
    const view = await svc.layerView("over:1", 1);
    expect(Object.fromEntries(view.entries.map((e) => [e.path, e.status]))).toEqual({ "etc/conf": "changed", same: "unchanged" });
    expect(x.layers[1]!.changes).toMatchObject({ added: 0, changed: 1, removed: 0, addedBytes: 300 });
  });

  it("identities, config, history with empty steps, and an image with no waste", async () => {
    const { svc } = await freshService();
    await svc.import(tarStream({ a: "1" }), { tags: ["base:1"], changes: ['ENTRYPOINT ["/a"]', "ENV K=v", "EXPOSE 80", "USER app", "WORKDIR /w", "LABEL l=1"] });
    const x = await svc.explain("base:1");
    expect(x.efficiency).toMatchObject({ efficiency: 1, wastedBytes: 0, files: [] });
    expect(x.config).toMatchObject({ entrypoint: ["/a"], env: ["K=v"], exposedPorts: ["80/tcp"], user: "app", workdir: "/w", labels: { l: "1" }, platform: expect.stringMatching(/^linux\//) });
    expect(x.repoTags).toEqual(["base:1"]);
    expect(x.manifestDigest).toMatch(/^sha256:/);
    expect(x.layers[0]!.chainID).toBe(x.layers[0]!.diffID);
    expect(x.history.filter((h) => h.layer !== null)).toHaveLength(1);
    await expect(svc.layerView("base:1", 1)).rejects.toMatchObject({ code: ImageServiceErrorCode.INVALID_LAYER_INDEX });
    await expect(svc.explain("nope:1")).rejects.toMatchObject({ code: "ERR_IMAGE_NOT_FOUND" });
  });

  it("compares two images: shared layers by ChainID, own layers, config and files", async () => {
    const { svc } = await freshService();
    await svc.import(tarStream({ "bin/sh": "shell" }), { tags: ["base:1"] });
    await svc.build({ base: "base:1", layers: [tarStream({ app: "v1", keep: "k" })], tags: ["app:1"], changes: ["ENV V=1"] });
    await svc.build({ base: "base:1", layers: [tarStream({ app: "v2!", extra: "e" })], tags: ["app:2"], changes: ["ENV V=2"] });
    const c = await svc.compare("app:1", "app:2");
    expect(c.shared).toHaveLength(1);
    expect(c.onlyA).toHaveLength(1);
    expect(c.onlyB).toHaveLength(1);
    expect(c.configDifferences).toEqual([{ field: "env", a: ["V=1"], b: ["V=2"] }]);
    expect(c.files).toEqual([
      { path: "app", status: "changed", sizeA: 2, sizeB: 3 },
      { path: "extra", status: "added", sizeA: null, sizeB: 1 },
      { path: "keep", status: "removed", sizeA: 1, sizeB: null },
    ]);
    expect(c.fileDifferences).toBe(3);
  });
});

describe("layerTree", () => {
  it("agrees with `tar -tv` of the layer (files, directories, a symlink, a hard link, a whiteout, an opaque marker)", async () => {
    const { svc, store, dir } = await freshService();
    const src = join(dir, "src");
    await mkdir(join(src, "usr/lib/deep"), { recursive: true });
    await writeFile(join(src, "usr/lib/deep/libx.so"), bytes(4096));
    await writeFile(join(src, "usr/lib/.wh.old"), "");
    await writeFile(join(src, "usr/lib/deep/.wh..wh..opq"), "");
    await writeFile(join(src, "readme"), "hello\n");
    await symlink("readme", join(src, "link"));
    execFileSync("ln", [join(src, "readme"), join(src, "hard")]);
    const tarFile = join(dir, "layer.tar");
    execFileSync("tar", ["-cf", tarFile, "-C", src, "."]);
    const img = await svc.import(tarFile, { tags: ["t:1"] });
    const files = await layerTree(store, img.layers[0]!.chainID);
    // the layer as stored, listed by GNU tar
    const stored = join(dir, "stored.tar");
    await pipeline(await store.layers.openUncompressed(img.layers[0]!.chainID), createWriteStream(stored));
    const listing = execFileSync("tar", ["-tvf", stored], { encoding: "utf8" }).trim().split("\n");
    const fromTar = listing
      .map((line) => {
        // -rw-r--r-- user/group   4096 2026-12-05 23:59 ./usr/lib/deep/libx.so
        const m = /^(\S)\S*\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.*?)(?: -> (.*)| link to (.*))?$/.exec(line);
        if (!m) throw new Error(`unparsed tar -tv line: ${line}`);
        const [, kind, size, name, symTarget, hardTarget] = m;
        return { name: name!.replace(/^\.\//, "").replace(/\/$/, ""), kind: kind!, size: Number(size), link: symTarget ?? hardTarget?.replace(/^\.\//, "") };
      })
      .filter((e) => e.name !== "." && e.name !== "");
    const ours = files.entries.map((e) => {
      const slash = e.path.lastIndexOf("/");
      const name =
        e.type === "opaque" ? `${e.path}/.wh..wh..opq` : e.type === "whiteout" ? `${e.path.slice(0, slash + 1)}.wh.${e.path.slice(slash + 1)}` : e.path;
      const kind = { dir: "d", symlink: "l", hardlink: "h", file: "-", whiteout: "-", opaque: "-", other: "?" }[e.type];
      return { name, kind, size: e.size, link: e.link?.replace(/^\.\//, "") };
    });
    expect(ours).toEqual(fromTar);
    expect(files.entries.map((e) => e.type).sort()).toEqual(["dir", "dir", "dir", "file", "file", "hardlink", "opaque", "symlink", "whiteout"].sort());
    expect(files.entries.find((e) => e.type === "whiteout")?.path).toBe("usr/lib/old");
    expect(files.entries.find((e) => e.type === "opaque")?.path).toBe("usr/lib/deep");
  });

  it("caches per DiffID under the store root, and recomputes a damaged cache file", async () => {
    const { svc, store } = await freshService();
    const img = await svc.import(tarStream({ a: "1", b: "22" }), { tags: ["t:1"] });
    const diffID = img.layers[0]!.diffID;
    const first = await layerTree(store, diffID);
    const file = join(store.root, LAYER_TREE_CACHE_DIR, `${digestHex(diffID)}.json`);
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ version: 2, diffID, entries: first.entries });
    for (const garbage of ["{not json", JSON.stringify({ version: 2, diffID, entries: [{ path: 3 }] }), ""]) {
      await writeFile(file, garbage);
      expect(await layerTree(store, img.layers[0]!.chainID)).toEqual(first);
      expect(JSON.parse(await readFile(file, "utf8")).entries).toEqual(first.entries);
    }
    // a cache of another layer's DiffID under this name is not believed
    await writeFile(file, JSON.stringify({ version: 2, diffID: `sha256:${"0".repeat(64)}`, entries: [] }));
    expect((await layerTree(store, diffID)).entries).toHaveLength(2);
    await expect(layerTree(store, `sha256:${"1".repeat(64)}`)).rejects.toMatchObject({ code: "ERR_LAYER_NOT_FOUND" });
  });
});

describe("readLayerEntries on hostile tars", () => {
  it("refuses a path deeper than MAX_PATH_DEPTH (ERR_UNSAFE_PATH), bytes that are not a tar (ERR_NOT_A_TAR); passes source errors through", async () => {
    const deep = `${"d/".repeat(MAX_PATH_DEPTH)}f`;
    const pack = tarPack.pack();
    pack.entry({ name: deep }, "x");
    pack.finalize();
    const parts: Buffer[] = [];
    for await (const c of pack) parts.push(c as Buffer);
    await expect(readLayerEntries([Buffer.concat(parts)])).rejects.toMatchObject({ code: ImageServiceErrorCode.UNSAFE_PATH });
    await expect(readLayerEntries([new Uint8Array(512).fill(7)])).rejects.toMatchObject({ code: ImageServiceErrorCode.NOT_A_TAR, cause: { code: "ERR_INVALID_TAR" } });
    await expect(readLayerEntries([Buffer.concat(parts).subarray(0, 700)])).rejects.toMatchObject({ code: ImageServiceErrorCode.NOT_A_TAR });
    const boom = Object.assign(new Error("network down"), { code: "ERR_SOURCE" });
    async function* failing() {
      yield Buffer.concat(parts).subarray(0, 512);
      throw boom;
    }
    await expect(readLayerEntries(failing())).rejects.toBe(boom);
  });

  it("tells a rewrite from a change by the header: size, mode, owner, mtime, link", async () => {
    const e = { path: "f", type: "file" as const, size: 3, mode: 0o644, mtime: 10, uid: 0, gid: 0 };
    expect(sameContent(e, { ...e })).toBe(true);
    for (const d of [{ size: 4 }, { mode: 0o755 }, { mtime: 11 }, { uid: 1 }, { gid: 1 }]) expect(sameContent(e, { ...e, ...d })).toBe(false);
  });
});
