import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { sha256 } from "@berth/digest";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ArchiveStore, archiveSize, load, readTar, save, saveStream } from "../src/index.js";
import { imageOf, layerTar, legacyEntries, ociEntries, tarOf, tempStore } from "./helpers.js";

let t: Awaited<ReturnType<typeof tempStore>>;
beforeEach(async () => {
  t = await tempStore();
});
afterEach(async () => {
  await t.cleanup();
});

async function twoLayerImage(opts: { gzip?: boolean; label?: string } = {}) {
  const l1 = await layerTar({ "a.txt": "first layer\n", "bin/x": "x".repeat(3000) });
  const l2 = await layerTar({ "b.txt": `second layer ${opts.label ?? ""}\n` });
  return imageOf([l1, l2], opts);
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe("load", () => {
  it("loads a legacy archive with manifest.json last, verifies DiffIDs, tags from RepoTags", async () => {
    const img = await twoLayerImage();
    const tar = await tarOf(legacyEntries([{ img, tags: ["example/app:1", "busybox"] }]));
    const r = await load(t.store, [tar]);
    expect(r.format).toBe("docker");
    expect(r.images).toHaveLength(1);
    const [li] = r.images;
    expect(li!.id).toBe(img.id);
    expect(li!.tags).toEqual(["docker.io/example/app:1", "docker.io/library/busybox:latest"]);
    expect(li!.layers.map((l) => l.diffID)).toEqual(img.diffIDs);
    expect(li!.layers.every((l) => l.new)).toBe(true);
    expect(await t.store.references.resolve("example/app:1")).toBe(img.id);
    // Loading again: nothing new.
    const again = await load(t.store, [tar]);
    expect(again.images[0]!.layers.every((l) => !l.new)).toBe(true);
    expect(again.images[0]!.existed).toBe(true);
  });

  it("takes a layer the archive leaves out from the store when the store has its chain (as dockerd's loader does)", async () => {
    const base = await layerTar({ "base.txt": "base layer\n" });
    const top = await layerTar({ "top.txt": "top layer\n" });
    const a = imageOf([base], { label: "base" });
    await load(t.store, [await tarOf(legacyEntries([{ img: a, tags: ["base:1"] }]))]);
    const b = imageOf([base, top], { label: "app" });
    const baseFile = `${sha256(base).slice(7)}/layer.tar`;
    const incremental = await tarOf(legacyEntries([{ img: b, tags: ["app:1"] }]).filter((e) => !e.name.startsWith(sha256(base).slice(7))));
    const r = await load(t.store, [incremental]);
    expect(r.images[0]!.id).toBe(b.id);
    expect(r.images[0]!.layers.map((l) => l.new)).toEqual([false, true]);
    expect(r.images[0]!.layers[0]!.blob).toEqual({ digest: sha256(base), size: base.length, compression: "none" });
    expect(await t.store.references.resolve("app:1")).toBe(b.id);
    // Every layer must be in the archive when asked so; the store is unchanged by the refusal.
    const other = imageOf([base, top], { label: "other" });
    const tar = await tarOf(legacyEntries([{ img: other, tags: ["other:1"] }]).filter((e) => e.name !== baseFile));
    await expect(load(t.store, [tar], { layersFromStore: false })).rejects.toMatchObject({ code: "ERR_NOT_IN_ARCHIVE" });
    expect(await t.store.images.len()).toBe(2);
  });

  it("a layer left out that the store does not have either → ERR_NOT_IN_ARCHIVE naming its chain, nothing kept", async () => {
    const base = await layerTar({ "base.txt": "not stored\n" });
    const top = await layerTar({ "top.txt": "top\n" });
    const img = imageOf([base, top]);
    const tar = await tarOf(legacyEntries([{ img, tags: ["app:1"] }]).filter((e) => !e.name.startsWith(sha256(base).slice(7))));
    const err = await load(t.store, [tar]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_NOT_IN_ARCHIVE", details: { chainID: sha256(base) } });
    expect((err as Error).message).toContain("neither an entry of the archive nor in the store");
    expect(await t.store.images.len()).toBe(0);
    expect(await t.store.references.list()).toEqual([]);
    expect(readdirSync(join(t.root, "ingest"))).toEqual([]);
  });

  it("loads ./-prefixed names, a whole-gzip archive and gzip layers", async () => {
    const img = await twoLayerImage({ gzip: true });
    const entries = legacyEntries([{ img, tags: ["gz:1"] }]).map((e) => ({ ...e, name: `./${e.name}` }));
    const tar = gzipSync(await tarOf(entries));
    const r = await load(t.store, Readable.from([tar]));
    expect(r.compression).toBe("gzip");
    expect(r.images[0]!.id).toBe(img.id);
    expect(r.images[0]!.layers.map((l) => l.blob.compression)).toEqual(["gzip", "gzip"]);
  });

  it("loads from a web ReadableStream and from a file path", async () => {
    const img = await twoLayerImage({ label: "web" });
    const tar = await tarOf(legacyEntries([{ img, tags: ["web:1"] }]));
    const web = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < tar.length; i += 1000) c.enqueue(tar.subarray(i, i + 1000));
        c.close();
      },
    });
    expect((await load(t.store, web)).images[0]!.id).toBe(img.id);
    const dir = mkdtempSync(join(tmpdir(), "berth-src-"));
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(dir, "a.tar"), tar);
    const r = await load(t.store, join(dir, "a.tar"));
    expect(r.images[0]!.existed).toBe(true);
    expect(r.bytesRead).toBe(tar.length);
  });

  it("hashes a file archive's large entries on worker threads with the same result as on the calling thread", async () => {
    // Random content (incompressible, so the gzip and zstd blobs stay large too).
    const random = (n: number, seed: number) => {
      const out = new Uint8Array(n);
      let x = seed;
      for (let i = 0; i < n; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        out[i] = x >>> 24;
      }
      return out;
    };
    const layers = [
      await layerTar({ "a.bin": random(3 << 20, 1), "small.txt": "s" }),
      await layerTar({ "b.bin": random(2 << 20, 2) }),
      await layerTar({ "c.txt": "tiny layer, in memory" }),
    ];
    const dir = mkdtempSync(join(tmpdir(), "berth-workers-"));
    try {
      for (const [kind, img] of [
        ["plain", imageOf(layers, { label: "plain" })],
        ["gzip", imageOf(layers, { gzip: true, label: "gzip" })],
        ["zstd", imageOf(layers, { zstd: true, label: "zstd" })],
      ] as const) {
        for (const [format, entries] of [
          ["docker", legacyEntries([{ img, tags: [`w:${kind}`] }])],
          ["oci", ociEntries(img, `w:${kind}`).entries],
        ] as const) {
          const file = join(dir, `${kind}-${format}.tar`);
          writeFileSync(file, await tarOf(entries));
          const [there, here] = [await tempStore(), await tempStore()];
          try {
            const progress: number[] = [];
            const onWorkers = await load(there.store, file, { workers: { threads: 2, minEntrySize: 1 << 20 }, onProgress: (p) => progress.push(p.bytesRead) });
            const onThisThread = await load(here.store, file, { workers: false });
            expect(onWorkers).toEqual(onThisThread);
            expect(onWorkers.images[0]!.id).toBe(img.id);
            expect(onWorkers.images[0]!.layers.map((l) => l.diffID)).toEqual(img.diffIDs);
            expect(onWorkers.bytesRead).toBe(readFileSync(file).length);
            expect(progress).toEqual([...progress].sort((a, b) => a - b));
            expect(progress.at(-1)).toBe(onWorkers.bytesRead);
            // The same layer records, dockerd's sizes (the tars' file sizes) included.
            const records = (s: typeof t.store) => Promise.all(onWorkers.images[0]!.layers.map((l) => s.layers.get(l.chainID)));
            const recorded = await records(there.store);
            expect(recorded).toEqual(await records(here.store));
            expect(recorded.every((r) => (r as { contentSize?: number }).contentSize! > 0)).toBe(true);
            expect(readdirSync(join(there.root, "ingest"))).toEqual([]);
          } finally {
            await there.cleanup();
            await here.cleanup();
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(process.platform === "linux")("closes the archive file when the tar ends before the file does", async () => {
    const img = await twoLayerImage({ label: "padded" });
    const tar = await tarOf(legacyEntries([{ img, tags: ["padded:1"] }]));
    const dir = mkdtempSync(join(tmpdir(), "berth-src-"));
    const file = join(dir, "padded.tar");
    // 3 MiB of padding after the end-of-archive marker: reading stops at the
    // marker with reads of the padding still in flight.
    writeFileSync(file, Buffer.concat([tar, Buffer.alloc(3 << 20)]));
    const openOnFile = () => readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === file;
      } catch {
        return false; // closed meanwhile
      }
    }).length;
    const r = await load(t.store, file);
    expect(r.images[0]!.id).toBe(img.id);
    expect(r.bytesRead).toBeLessThan(tar.length + (3 << 20));
    expect(openOnFile()).toBe(0);
    // Also when worker threads read the entries.
    await load(t.store, file, { memoryBudget: 0, workers: { minEntrySize: 1 } });
    expect(openOnFile()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it("workers warmed before a load are the ones it takes, and neither keeps the process running", async () => {
    const img = await twoLayerImage({ label: "warm" });
    const dir = mkdtempSync(join(tmpdir(), "berth-warm-"));
    const file = join(dir, "a.tar");
    writeFileSync(file, await tarOf(legacyEntries([{ img, tags: ["warm:1"] }])));
    // the built packages, as a program using them runs them
    const dist = (name: string) => pathToFileURL(join(dirname(createRequire(import.meta.url).resolve(`${name}/package.json`)), "dist/index.js")).href;
    // counts the workers started (through node:worker_threads' export, as the package takes it)
    const script = `
      import { createRequire, syncBuiltinESMExports } from "node:module";
      const threads = createRequire(import.meta.url)("node:worker_threads");
      let started = 0;
      threads.Worker = class extends threads.Worker { constructor(...a) { super(...a); started++; } };
      syncBuiltinESMExports();
      const { load, warmLoadWorkers } = await import(${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)});
      const { openStore } = await import(${JSON.stringify(dist("@berth/image-store"))});
      warmLoadWorkers();
      const warmed = started;
      const ids = [];
      for (const root of ["s1", "s2"]) {
        const store = await openStore({ root: ${JSON.stringify(dir)} + "/" + root });
        ids.push((await load(store, ${JSON.stringify(file)}, { memoryBudget: 0, workers: { minEntrySize: 1 } })).images[0].id);
        await store.close();
      }
      console.log(warmed > 0, started === warmed, ids.join(" "));
    `;
    writeFileSync(join(dir, "main.mjs"), script);
    try {
      const out = execFileSync(process.execPath, [join(dir, "main.mjs")], { encoding: "utf8", timeout: 30_000 });
      expect(out.trim()).toBe(`true true ${img.id} ${img.id}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an AbortSignal stops a load on worker threads: the reason thrown, nothing visible, no ingest left", async () => {
    const img = await twoLayerImage({ label: "aborted" });
    const dir = mkdtempSync(join(tmpdir(), "berth-src-"));
    const file = join(dir, "a.tar");
    writeFileSync(file, await tarOf(legacyEntries([{ img, tags: ["aborted:1"] }])));
    try {
      const ac = new AbortController();
      const opts = { memoryBudget: 0, workers: { minEntrySize: 1 }, signal: ac.signal, onProgress: () => ac.abort(new Error("stop")) };
      await expect(load(t.store, file, opts)).rejects.toThrow("stop");
      expect(await t.store.images.len()).toBe(0);
      await expect(t.store.references.resolve("aborted:1")).rejects.toMatchObject({ code: "ERR_IMAGE_NOT_FOUND" });
      expect(readdirSync(join(t.root, "ingest"))).toEqual([]);
      // the same archive loads when not stopped
      expect((await load(t.store, file, { memoryBudget: 0, workers: { minEntrySize: 1 } })).images[0]!.id).toBe(img.id);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an AbortSignal that fires while the load commits rolls the commit back (nothing kept, no orphan blob)", async () => {
    const img = await twoLayerImage({ label: "late" });
    const ac = new AbortController();
    const store = t.store as typeof t.store & { fsck(): Promise<{ problems: Array<{ kind: string }> }>; gc: NonNullable<ArchiveStore["gc"]> };
    const refs = store.references;
    // the signal comes as the tag is set, the commit's last step
    const stopped: ArchiveStore = {
      content: store.content,
      layers: store.layers,
      images: store.images,
      lease: () => store.lease(),
      gc: (o) => store.gc(o),
      references: {
        tag: (...args) => {
          ac.abort(new Error("late stop"));
          return refs.tag(...args);
        },
        untag: (ref) => refs.untag(ref),
        resolve: (ref) => refs.resolve(ref),
        referencesOf: (id) => refs.referencesOf(id),
      },
    };
    await expect(load(stopped, [await tarOf(legacyEntries([{ img, tags: ["late:1"] }]))], { signal: ac.signal })).rejects.toThrow("late stop");
    expect(await t.store.images.len()).toBe(0);
    expect(await t.store.references.list()).toEqual([]);
    expect((await store.fsck()).problems).toEqual([]);
  });

  it("loads symlinked duplicate layers (the same layer twice in one chain)", async () => {
    const l = await layerTar({ "same.txt": "same\n" });
    const l2 = await layerTar({ ".wh.same.txt": "" });
    const img = imageOf([l, l2, l]);
    const dir = (b: Uint8Array) => sha256(b).slice(7);
    const tar = await tarOf([
      { name: `${dir(l)}/layer.tar`, body: l },
      { name: `${dir(l2)}/layer.tar`, body: l2 },
      { name: `zzz/layer.tar`, type: "symlink", linkname: `../${dir(l)}/layer.tar` },
      { name: `${img.id.slice(7)}.json`, body: img.config },
      { name: "manifest.json", body: JSON.stringify([{ Config: `${img.id.slice(7)}.json`, RepoTags: ["rep:1"], Layers: [`${dir(l)}/layer.tar`, `${dir(l2)}/layer.tar`, "zzz/layer.tar"] }]) },
    ]);
    const r = await load(t.store, [tar]);
    const chain = r.images[0]!.layers.map((x) => x.chainID);
    expect(new Set(chain).size).toBe(3);
    expect(r.images[0]!.layers[0]!.diffID).toBe(r.images[0]!.layers[2]!.diffID);
  });

  it("loads an OCI layout archive with ref names (bare tag needs a repository)", async () => {
    const img = await twoLayerImage({ gzip: true });
    const { entries, manifestDigest } = ociEntries(img, "example/oci:2");
    const r = await load(t.store, [await tarOf(entries)]);
    expect(r.format).toBe("oci");
    expect(r.images[0]!.archiveManifestDigest).toBe(manifestDigest);
    expect(r.images[0]!.tags).toEqual(["docker.io/example/oci:2"]);
    const bare = ociEntries(await twoLayerImage({ label: "bare" }), "latest");
    const r2 = await load(t.store, [await tarOf(bare.entries)]);
    expect(r2.ignoredRefNames).toEqual(["latest"]);
    expect(r2.images[0]!.tags).toEqual([]);
    const r3 = await load(t.store, [await tarOf(bare.entries)], { repository: "example/bare" });
    expect(r3.images[0]!.tags).toEqual(["docker.io/example/bare:latest"]);
  });

  it("does not move an existing tag unless asked, and reports it", async () => {
    const a = await twoLayerImage({ label: "a" });
    const b = await twoLayerImage({ label: "b" });
    await load(t.store, [await tarOf(legacyEntries([{ img: a, tags: ["app:1"] }]))]);
    const tarB = await tarOf(legacyEntries([{ img: b, tags: ["app:1"] }]));
    const kept = await load(t.store, [tarB]);
    expect(kept.tagConflicts).toEqual([{ ref: "docker.io/library/app:1", existing: a.id, wanted: b.id, action: "kept" }]);
    expect(await t.store.references.resolve("app:1")).toBe(a.id);
    await expect(load(t.store, [tarB], { tagConflict: "error" })).rejects.toMatchObject({ code: "ERR_TAG_CONFLICT" });
    const moved = await load(t.store, [tarB], { overwriteTags: true });
    expect(moved.tagConflicts[0]!.action).toBe("moved");
    expect(await t.store.references.resolve("app:1")).toBe(b.id);
  });

  it("streams large layers through the content store (beyond the memory budget)", async () => {
    const big = await layerTar({ "big.bin": new Uint8Array(3 << 20).map((_, i) => (i * 7) & 0xff) });
    const img = imageOf([big, await layerTar({ "x": "y" })], { gzip: true });
    const r = await load(t.store, [await tarOf(legacyEntries([{ img, tags: ["big:1"] }]))], { memoryBudget: 0 });
    expect(r.images[0]!.layers[0]!.size).toBe(big.length);
  });
});

describe("load without layers.recordLayer", () => {
  it("falls back to register() from the stored blob, same result", async () => {
    const big = await layerTar({ "big.bin": new Uint8Array(2 << 20).map((_, i) => (i * 13) & 0xff) });
    const img = imageOf([big, await layerTar({ "y": "z" })], { gzip: true });
    const layers = new Proxy(t.store.layers, {
      get(target, prop) {
        if (prop === "recordLayer") return undefined;
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const s = t.store;
    const r = await load({ content: s.content, images: s.images, references: s.references, layers, lease: () => s.lease() }, [await tarOf(legacyEntries([{ img, tags: ["fb:1"] }]))], { memoryBudget: 0 });
    expect(r.images[0]!.id).toBe(img.id);
    expect(r.images[0]!.layers.map((l) => l.diffID)).toEqual(img.diffIDs);
  });
});

describe("hostile archives are refused and leave nothing visible", () => {
  /**
   * Refused from a stream, and again from a file whose every entry (JSON
   * aside) goes to the worker threads, leaving no ingest file behind.
   */
  async function expectRefused(entries: Parameters<typeof tarOf>[0] | Uint8Array, code: string, opts = {}) {
    const tar = entries instanceof Uint8Array ? entries : await tarOf(entries);
    await expect(load(t.store, [tar], opts)).rejects.toMatchObject({ code });
    expect(await t.store.images.len()).toBe(0);
    expect(await t.store.references.list()).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), "berth-src-"));
    try {
      writeFileSync(join(dir, "a.tar"), tar);
      await expect(load(t.store, join(dir, "a.tar"), { memoryBudget: 0, workers: { minEntrySize: 1 }, ...opts })).rejects.toMatchObject({ code });
      expect(await t.store.images.len()).toBe(0);
      expect(await t.store.references.list()).toEqual([]);
      expect(readdirSync(join(t.root, "ingest"))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  let good: Awaited<ReturnType<typeof twoLayerImage>>;
  beforeEach(async () => {
    good = await twoLayerImage();
  });

  it("'..' in an entry name → ERR_UNSAFE_PATH", async () => {
    await expectRefused([{ name: "../evil", body: "x" }, ...legacyEntries([{ img: good, tags: ["a:1"] }])], "ERR_UNSAFE_PATH");
  });
  it("absolute entry name → ERR_UNSAFE_PATH", async () => {
    await expectRefused([...legacyEntries([{ img: good, tags: ["a:1"] }]), { name: "/etc/evil", body: "x" }], "ERR_UNSAFE_PATH");
  });
  it("manifest.json Layers path with '..' → ERR_UNSAFE_PATH", async () => {
    const e = legacyEntries([{ img: good, tags: ["a:1"] }]);
    const m = JSON.parse(e.at(-1)!.body as string);
    m[0].Layers[0] = `../${m[0].Layers[0]}`;
    e[e.length - 1] = { name: "manifest.json", body: JSON.stringify(m) };
    await expectRefused(e, "ERR_UNSAFE_PATH");
  });
  it("symlink escaping the archive → ERR_UNSAFE_LINK", async () => {
    await expectRefused([{ name: "x/layer.tar", type: "symlink", linkname: "../../etc/passwd" }, ...legacyEntries([{ img: good, tags: null }])], "ERR_UNSAFE_LINK");
  });
  it("absolute symlink → ERR_UNSAFE_LINK", async () => {
    await expectRefused([{ name: "x/layer.tar", type: "symlink", linkname: "/etc/passwd" }, ...legacyEntries([{ img: good, tags: null }])], "ERR_UNSAFE_LINK");
  });
  it("symlink to a missing entry → ERR_UNSAFE_LINK", async () => {
    await expectRefused([{ name: "x/layer.tar", type: "symlink", linkname: "../nothere/layer.tar" }, ...legacyEntries([{ img: good, tags: null }])], "ERR_UNSAFE_LINK");
  });
  it("Config path that is not an entry → ERR_NOT_IN_ARCHIVE", async () => {
    const e = legacyEntries([{ img: good, tags: ["a:1"] }]).filter((x) => !x.name.endsWith(".json") || x.name === "manifest.json");
    await expectRefused(e, "ERR_NOT_IN_ARCHIVE");
  });
  it("Layers path that is not an entry → ERR_NOT_IN_ARCHIVE", async () => {
    const e = legacyEntries([{ img: good, tags: ["a:1"] }]);
    await expectRefused(e.filter((x) => x.name !== e[0]!.name), "ERR_NOT_IN_ARCHIVE");
  });
  it("OCI layer blob missing → ERR_NOT_IN_ARCHIVE", async () => {
    const { entries } = ociEntries(good, "a:1");
    await expectRefused(entries.filter((x) => x.name !== `blobs/sha256/${sha256(good.layers[0]!).slice(7)}`), "ERR_NOT_IN_ARCHIVE");
  });
  it("non-digest blob path → ERR_INVALID_BLOB_PATH", async () => {
    const { entries } = ociEntries(good, "a:1");
    await expectRefused([{ name: "blobs/sha256/not-a-digest", body: "x" }, ...entries], "ERR_INVALID_BLOB_PATH");
    await expectRefused([{ name: "blobs/md5/d41d8cd98f00b204e9800998ecf8427e", body: "" }, ...entries], "ERR_INVALID_BLOB_PATH");
  });
  it("duplicate entry with different content → ERR_DUPLICATE_ENTRY (same content is fine)", async () => {
    const e = legacyEntries([{ img: good, tags: ["a:1"] }]);
    await expectRefused([...e.slice(0, -1), { name: e[0]!.name, body: "other" }, e.at(-1)!], "ERR_DUPLICATE_ENTRY");
    const r = await load(t.store, [await tarOf([...e.slice(0, -1), e[0]!, e.at(-1)!])]);
    expect(r.images[0]!.id).toBe(good.id);
  });
  it("JSON beyond the size limit → ERR_JSON_TOO_LARGE", async () => {
    const e = legacyEntries([{ img: good, tags: ["a:1"] }]);
    await expectRefused(e, "ERR_JSON_TOO_LARGE", { maxJsonSize: 100 });
    // manifest.json larger than the default limit (8 MiB) is refused from its header, without reading it.
    const huge = `[${" ".repeat(9 << 20)}]`;
    await expectRefused([...e.slice(0, -1), { name: "manifest.json", body: huge }], "ERR_JSON_TOO_LARGE");
  });
  it("truncated archive → ERR_TRUNCATED", async () => {
    const tar = await tarOf(legacyEntries([{ img: good, tags: ["a:1"] }]));
    await expectRefused(tar.subarray(0, 512 + 700), "ERR_TRUNCATED");
    const gz = gzipSync(tar);
    await expectRefused(gz.subarray(0, gz.length - 40), "ERR_TRUNCATED");
  });
  it("blob content not matching its digest name → ERR_DIGEST_MISMATCH", async () => {
    const { entries } = ociEntries(good, "a:1");
    const name = `blobs/sha256/${sha256(good.layers[0]!).slice(7)}`;
    await expectRefused(entries.map((x) => (x.name === name ? { name, body: good.layers[1]! } : x)), "ERR_DIGEST_MISMATCH");
  });
  it("large blob not matching its digest name → ERR_DIGEST_MISMATCH (store path)", async () => {
    const big = await layerTar({ "big.bin": new Uint8Array(2 << 20).fill(1) });
    const { entries } = ociEntries(imageOf([big]), "a:1");
    const name = `blobs/sha256/${sha256(big).slice(7)}`;
    const bad = new Uint8Array(big);
    bad[bad.length - 2000] = bad[bad.length - 2000]! ^ 1;
    await expectRefused(entries.map((x) => (x.name === name ? { name, body: bad } : x)), "ERR_DIGEST_MISMATCH");
  });
  it("layer whose DiffID differs from the config → ERR_DIGEST_MISMATCH", async () => {
    const other = await twoLayerImage({ label: "other" });
    const e = legacyEntries([{ img: { ...good, layers: [good.layers[0]!, other.layers[1]!] }, tags: ["a:1"] }]);
    await expectRefused(e, "ERR_DIGEST_MISMATCH");
  });
  it("layer decompressing beyond the limit → ERR_DECOMPRESSION_LIMIT", async () => {
    const bomb = await layerTar({ "zeros": new Uint8Array(8 << 20) });
    const img = imageOf([bomb], { gzip: true });
    await expectRefused(legacyEntries([{ img, tags: ["a:1"] }]), "ERR_DECOMPRESSION_LIMIT", { maxLayerSize: 1 << 20 });
    await expectRefused(legacyEntries([{ img, tags: ["a:1"] }]), "ERR_DECOMPRESSION_LIMIT", { maxLayerSize: 1 << 20, memoryBudget: 0 });
  });
  it("corrupt (truncated) gzip layer → ERR_CORRUPT_DATA, in memory and streamed to the store", async () => {
    const img = imageOf([await layerTar({ "r.bin": new Uint8Array(3 << 20).map((_, i) => (i * 31) & 0xff) })], { gzip: true });
    const cut = { ...img, layers: [img.layers[0]!.subarray(0, img.layers[0]!.length - 100)] };
    await expectRefused(legacyEntries([{ img: cut, tags: ["a:1"] }]), "ERR_CORRUPT_DATA");
    await expectRefused(legacyEntries([{ img: cut, tags: ["a:1"] }]), "ERR_CORRUPT_DATA", { memoryBudget: 0 });
  });
  it("a layer that is not a tar (its DiffID right in the config) → ERR_INVALID_TAR, plain and gzip, in memory and streamed", async () => {
    const junk = (n: number) => new Uint8Array(n).map((_, i) => (i * 131 + (i >> 9)) & 0x7f);
    for (const [size, opts] of [[100_000, {}], [2 << 20, {}], [2 << 20, { gzip: true }]] as const) {
      const img = imageOf([junk(size)], opts);
      const e = legacyEntries([{ img, tags: ["junk:1"] }]);
      await expectRefused(e, "ERR_INVALID_TAR");
      await expectRefused(e, "ERR_INVALID_TAR", { memoryBudget: 0 });
      await expect(load(t.store, [await tarOf(e)])).rejects.toThrow(/layer 0 .* of image sha256:[0-9a-f]{64}: layer is not a valid tar archive: bad header checksum at byte 0/);
    }
  });
  it("an archive with no manifest → ERR_UNKNOWN_ARCHIVE_FORMAT", async () => {
    await expectRefused([{ name: "x", body: "y" }], "ERR_UNKNOWN_ARCHIVE_FORMAT");
  });
  it("a config the image store refuses (after another image was created) rolls everything back", async () => {
    const l = await layerTar({ "only": "one layer" });
    const bad = imageOf([l], { label: "bad" });
    const cfg = JSON.parse(Buffer.from(bad.config).toString());
    cfg.history.push({ created_by: "a second non-empty step without a layer" });
    const badConfig = Buffer.from(JSON.stringify(cfg));
    const badImg = { ...bad, config: badConfig, id: sha256(badConfig) };
    await expectRefused(legacyEntries([{ img: good, tags: ["first:1"] }, { img: badImg, tags: ["second:1"] }]), "ERR_INVALID_CONFIG");
  });
  it("a refused load removes what only it wrote: no blob-orphan after flipped layer bytes, a missing blob, an oversize config, a decompression bomb; earlier images intact", async () => {
    // the earlier image shares its bottom layer with every refused archive
    const shared = good.layers[0]!;
    await load(t.store, [await tarOf(legacyEntries([{ img: good, tags: ["keep:1"] }]))]);
    const big = await layerTar({ "big.bin": new Uint8Array(2 << 20).map((_, i) => (i * 7) & 0xff) });
    const img = imageOf([shared, big]);
    const bigName = `blobs/sha256/${sha256(big).slice(7)}`;
    const flipped = new Uint8Array(big);
    flipped[flipped.length - 2000] = flipped[flipped.length - 2000]! ^ 1;
    const oci = ociEntries(img, "new:1").entries;
    const bomb = imageOf([shared, await layerTar({ zeros: new Uint8Array(8 << 20) })], { gzip: true });
    const cases: Array<[string, Parameters<typeof tarOf>[0], string, object]> = [
      ["flipped layer bytes", oci.map((x) => (x.name === bigName ? { name: bigName, body: flipped } : x)), "ERR_DIGEST_MISMATCH", {}],
      ["a missing OCI blob", oci.filter((x) => x.name !== `blobs/sha256/${img.id.slice(7)}`), "ERR_NOT_IN_ARCHIVE", {}],
      ["an oversize config", oci, "ERR_JSON_TOO_LARGE", { maxJsonSize: img.config.length - 1 }],
      ["a decompression bomb", legacyEntries([{ img: bomb, tags: ["new:1"] }]), "ERR_DECOMPRESSION_LIMIT", { maxLayerSize: 4 << 20 }],
    ];
    const dir = mkdtempSync(join(tmpdir(), "berth-src-"));
    try {
      for (const [what, entries, code, opts] of cases) {
        const tar = await tarOf(entries);
        writeFileSync(join(dir, "a.tar"), tar);
        for (const source of [[tar], join(dir, "a.tar")]) {
          const workers = typeof source === "string" ? { memoryBudget: 0, workers: { minEntrySize: 1 } } : { memoryBudget: 0 };
          await expect(load(t.store, source, { ...workers, ...opts }), what).rejects.toMatchObject({ code });
          const report = await (t.store as unknown as { fsck(): Promise<{ ok: boolean; problems: Array<{ kind: string }> }> }).fsck();
          expect(report.problems.map((p) => p.kind), `${what} from ${typeof source === "string" ? "a file" : "a stream"}`).toEqual([]);
          expect(await t.store.references.list()).toEqual([{ ref: "docker.io/library/keep:1", id: good.id }]);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("an earlier image survives a refused load", async () => {
    await load(t.store, [await tarOf(legacyEntries([{ img: good, tags: ["keep:1"] }]))]);
    const other = await twoLayerImage({ label: "o" });
    const e = legacyEntries([{ img: other, tags: ["keep:1", "new:1"] }]);
    await expect(load(t.store, [await tarOf(e)], { maxJsonSize: 50 })).rejects.toMatchObject({ code: "ERR_JSON_TOO_LARGE" });
    expect(await t.store.references.list()).toEqual([{ ref: "docker.io/library/keep:1", id: good.id }]);
  });
});

describe("save", () => {
  async function loaded() {
    const a = await twoLayerImage({ label: "a", gzip: true });
    const b = imageOf([(await twoLayerImage({ label: "a" })).layers[0] as Uint8Array, await layerTar({ "b": "b" })]);
    await load(t.store, [await tarOf(legacyEntries([{ img: a, tags: ["app:a"] }, { img: b, tags: ["app:b"] }]))]);
    return { a, b };
  }

  for (const format of ["docker+oci", "docker", "oci"] as const) {
    it(`${format}: round-trips through load with the same IDs and tags; size predicted; deterministic`, async () => {
      const { a, b } = await loaded();
      const dir = mkdtempSync(join(tmpdir(), "berth-save-"));
      const out = join(dir, "out.tar");
      const predicted = await archiveSize(t.store, ["app:a", "app:b"], { format });
      const r = await save(t.store, ["app:a", "app:b"], out, { format });
      const bytes = readFileSync(out);
      expect(bytes.length).toBe(predicted);
      expect(r.size).toBe(predicted);
      expect(readdirSync(dir)).toEqual(["out.tar"]);
      const again = await bytesOf(saveStream(t.store, ["app:b", "app:a"], { format }));
      expect(Buffer.compare(again, bytes)).toBe(0);
      // Each blob once: the shared base layer is written one time.
      const names: string[] = [];
      for await (const e of readTar([bytes])) names.push(e.name);
      expect(new Set(names).size).toBe(names.length);
      expect(names).toEqual([...names].sort());
      const t2 = await tempStore();
      try {
        const lr = await load(t2.store, [bytes], format === "oci" ? {} : {});
        expect(lr.images.map((i) => i.id).sort()).toEqual([a.id, b.id].sort());
        const tags = lr.images.flatMap((i) => i.tags).sort();
        expect(tags).toEqual(["docker.io/library/app:a", "docker.io/library/app:b"]);
      } finally {
        await t2.cleanup();
      }
    });
  }

  it("uncompressed: writes the tars, with a manifest listing DiffIDs", async () => {
    const { a } = await loaded();
    const bytes = await bytesOf(saveStream(t.store, ["app:a"], { uncompressed: true }));
    expect(bytes.length).toBe(await archiveSize(t.store, ["app:a"], { uncompressed: true }));
    const names: string[] = [];
    for await (const e of readTar([bytes])) names.push(e.name);
    for (const d of a.diffIDs) expect(names).toContain(`blobs/sha256/${d.slice(7)}`);
    const t2 = await tempStore();
    try {
      const lr = await load(t2.store, [bytes]);
      expect(lr.images[0]!.id).toBe(a.id);
      expect(lr.images[0]!.layers.map((l) => l.blob.compression)).toEqual(["none", "none"]);
    } finally {
      await t2.cleanup();
    }
  });

  it("progress: save reports bytes against the known total; load reports bytes read and the file size", async () => {
    await loaded();
    const dir = mkdtempSync(join(tmpdir(), "berth-save-"));
    const out = join(dir, "p.tar");
    const seen: Array<{ bytesWritten: number; total: number }> = [];
    const r = await save(t.store, ["app:a"], out, { onProgress: (p) => seen.push(p) });
    expect(seen.at(-1)).toEqual({ bytesWritten: r.size, total: r.size });
    const t2 = await tempStore();
    try {
      const reads: Array<{ bytesRead: number; total?: number }> = [];
      await load(t2.store, out, { onProgress: (p) => reads.push(p) });
      expect(reads.at(-1)).toMatchObject({ bytesRead: r.size, total: r.size });
    } finally {
      await t2.cleanup();
    }
  });

  it("by ID: untagged; SOURCE_DATE_EPOCH/mtime applied", async () => {
    const { a } = await loaded();
    const bytes = await bytesOf(saveStream(t.store, [a.id.slice(7, 19)], { mtime: 1234567890 }));
    for await (const e of readTar([bytes])) expect(e.mtime).toBe(1234567890);
    const t2 = await tempStore();
    try {
      const lr = await load(t2.store, [bytes]);
      expect(lr.images[0]!.tags).toEqual([]);
    } finally {
      await t2.cleanup();
    }
  });

  it("extra files: written beside the images; a name that does not fit a ustar header is refused before writing", async () => {
    await loaded();
    const extra = { name: "berth-cache/v1/parents.json", bytes: new TextEncoder().encode("{}") };
    const bytes = await bytesOf(saveStream(t.store, ["app:a"], { extraFiles: [extra] }));
    expect(bytes.length).toBe(await archiveSize(t.store, ["app:a"], { extraFiles: [extra] }));
    const names: string[] = [];
    for await (const e of readTar([bytes])) names.push(e.name);
    expect(names).toContain(extra.name);
    const dir = mkdtempSync(join(tmpdir(), "berth-save-"));
    const tooLong = { name: `berth-cache/${"n".repeat(120)}`, bytes: extra.bytes };
    await expect(archiveSize(t.store, ["app:a"], { extraFiles: [tooLong] })).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(save(t.store, ["app:a"], join(dir, "x.tar"), { extraFiles: [tooLong] })).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    expect(readdirSync(dir)).toEqual([]);
  });

  it("a failing save leaves no output file; a failing stream errors the stream", async () => {
    await loaded();
    const dir = mkdtempSync(join(tmpdir(), "berth-save-"));
    await expect(save(t.store, ["nope:1"], join(dir, "x.tar"))).rejects.toBeTruthy();
    expect(readdirSync(dir)).toEqual([]);
    // Remove a layer blob from under the store: the save fails mid-way.
    const img = await t.store.images.get(await t.store.references.resolve("app:a"));
    const layer = await t.store.layers.get(img.chainID!);
    rmSync(join(t.root, "blobs", "sha256", layer.blob.digest.slice(7)));
    await expect(save(t.store, ["app:a"], join(dir, "y.tar"))).rejects.toBeTruthy();
    expect(readdirSync(dir)).toEqual([]);
    const sink = new Writable({ write(_c, _e, cb) { cb(); } });
    sink.on("error", () => {});
    await expect(save(t.store, ["app:a"], sink)).rejects.toBeTruthy();
    expect(sink.destroyed).toBe(true);
  });
});
