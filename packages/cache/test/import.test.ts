import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { chainId, digestHex, layerDigests, sha256 } from "@berth/digest";
import { type LayerStore, openLayerStore } from "@berth/layer-store";
import { pack } from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CACHE_CONFIG_MEDIA_TYPE, importCache } from "../src/import.js";
import { openCacheManager } from "../src/records.js";
import { makeTarGz, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => Promise<void>;
let layers: LayerStore;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  layers = await openLayerStore({ root: path.join(dir, "store") });
});
afterEach(async () => {
  await layers.close();
  await cleanup();
});

const GZ = "application/vnd.oci.image.layer.v1.tar+gzip";
const k = (s: string) => sha256(`key:${s}`);

/** An OCI layout on disk with the given blobs and one index.json entry. */
async function writeLayout(root: string, blobs: Uint8Array[], top: { mediaType: string; bytes: Uint8Array }, tag = "latest") {
  await mkdir(path.join(root, "blobs", "sha256"), { recursive: true });
  for (const b of [...blobs, top.bytes]) await writeFile(path.join(root, "blobs", "sha256", digestHex(sha256(b))), b);
  await writeFile(path.join(root, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  const index = { schemaVersion: 2, manifests: [{ mediaType: top.mediaType, digest: sha256(top.bytes), size: top.bytes.length, annotations: { "org.opencontainers.image.ref.name": tag } }] };
  await writeFile(path.join(root, "index.json"), JSON.stringify(index));
}

async function tarDir(root: string, files: string[], out: string) {
  const p = pack();
  const done = pipeline(p, createWriteStream(out));
  const { readFile } = await import("node:fs/promises");
  for (const f of files) {
    const b = await readFile(path.join(root, f));
    p.entry({ name: f, size: b.length, mode: 0o644 }, b);
  }
  p.finalize();
  await done;
}

async function twoLayers() {
  const b1 = await makeTarGz({ "a.txt": "layer one" });
  const b2 = await makeTarGz({ "b.txt": "layer two" });
  const d1 = await layerDigests([b1]);
  const d2 = await layerDigests([b2]);
  return { b1, b2, d1, d2 };
}

/** A BuildKit `type=local` style cache: an index listing layer blobs and the cacheconfig. */
async function recordsCache(root: string, opts: { corrupt?: boolean } = {}) {
  const { b1, b2, d1, d2 } = await twoLayers();
  const config = {
    layers: [
      { blob: d1.digest, parent: -1 },
      { blob: d2.digest, annotations: { diffID: d2.diffID, mediaType: GZ, size: b2.length, createdAt: "2024-01-01T00:00:00Z" } }, // parent omitted = 0 (Go omitempty)
    ],
    records: [
      { digest: k("base"), layers: [{ layer: 0, createdAt: "2024-01-01T00:00:00Z" }] },
      { digest: k("run"), layers: [{ layer: 1, createdAt: "2024-01-01T00:00:00Z" }], inputs: [[{ selector: sha256("content"), link: 0 }]] },
      { digest: k("nolayer"), inputs: [[{ link: 1 }]] },
    ],
  };
  const cfgBytes = new TextEncoder().encode(JSON.stringify(config));
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      { mediaType: GZ, digest: d1.digest, size: b1.length, annotations: { "containerd.io/uncompressed": d1.diffID } },
      { mediaType: GZ, digest: d2.digest, size: b2.length, annotations: { "containerd.io/uncompressed": d2.diffID } },
      { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256(cfgBytes), size: cfgBytes.length },
    ],
  };
  const top = new TextEncoder().encode(JSON.stringify(index));
  await writeLayout(root, [b1, b2, cfgBytes], { mediaType: index.mediaType, bytes: top });
  if (opts.corrupt) await writeFile(path.join(root, "blobs", "sha256", digestHex(d2.digest)), await makeTarGz({ "b.txt": "tampered" }));
  return { d1, d2, files: ["oci-layout", "index.json", ...[b1, b2, cfgBytes, top].map((b) => `blobs/sha256/${digestHex(sha256(b))}`)] };
}

describe("importCache", () => {
  it("index form (cacheconfig v0 records): probe, lookup registers the chain, contentMapping", async () => {
    const root = path.join(dir, "cache");
    const { d1, d2 } = await recordsCache(root);
    const cm = await openCacheManager({ root: path.join(dir, "store"), layers });
    const imp = await importCache({ layers }, root, { manager: cm });
    expect(imp.kind).toBe("records");
    expect(imp.keys().sort()).toEqual([k("base"), k("run"), k("nolayer")].sort());
    expect(imp.probe(k("run"))).toBe(true);
    expect(imp.probe(k("nolayer"))).toBe(false);
    expect(imp.probe(k("unknown"))).toBe(false);
    expect(await imp.lookup(k("nolayer"))).toBeUndefined();
    const res = await imp.lookup(k("run"));
    expect(res?.chainID).toBe(chainId([d1.diffID, d2.diffID]));
    expect(res?.diffIDs).toEqual([d1.diffID, d2.diffID]);
    expect(await layers.has(res?.chainID as string)).toBe(true);
    expect((await cm.records()).map((r) => r.chainID).sort()).toEqual([d1.diffID, res?.chainID].sort());
    expect(imp.contentMapping(sha256("content"))).toEqual([k("run")]);
    await res?.ref?.release();
    // The same from a tar of the layout, read in place.
    const tarFile = path.join(dir, "cache.tar");
    const { files } = await recordsCache(path.join(dir, "cache2"));
    await tarDir(path.join(dir, "cache2"), files, tarFile);
    const imp2 = await importCache({ layers }, tarFile);
    expect((await imp2.lookup(k("base")))?.chainID).toBe(d1.diffID);
  });

  it("fetches a blob again when another process's GC took it between seeing it and registering it", async () => {
    const root = path.join(dir, "cache");
    const { d1, d2 } = await recordsCache(root);
    // the store says it has the blobs (as after an earlier import), but they are gone when opened
    const bound = <T extends object>(target: T, over: Record<string, unknown>): T =>
      new Proxy(target, {
        get(t, prop) {
          if (typeof prop === "string" && prop in over) return over[prop];
          const v = Reflect.get(t, prop, t);
          return typeof v === "function" ? v.bind(t) : v;
        },
      });
    const racing = bound(layers, { content: bound(layers.content, { has: async () => true }) });
    const imp = await importCache({ layers: racing }, root);
    const res = await imp.lookup(k("run"));
    expect(res?.chainID).toBe(chainId([d1.diffID, d2.diffID]));
    expect(await layers.content.has(d2.digest)).toBe(true);
  });

  it("refuses a tampered blob and leaves no layer", async () => {
    const root = path.join(dir, "bad");
    const { d1, d2 } = await recordsCache(root, { corrupt: true });
    const imp = await importCache({ layers }, root);
    await expect(imp.lookup(k("run"))).rejects.toMatchObject({ code: expect.stringMatching(/ERR_(DIGEST|SIZE)_MISMATCH/) });
    expect(await layers.has(chainId([d1.diffID, d2.diffID]) as string)).toBe(false);
  });

  it("with onFetchError, a blob the source cannot give is a miss with a warning; a tampered one still throws", async () => {
    const root = path.join(dir, "gone");
    const { d1, d2 } = await recordsCache(root);
    const { rm } = await import("node:fs/promises");
    await rm(path.join(root, "blobs", "sha256", digestHex(d2.digest)));
    const warnings: string[] = [];
    const imp = await importCache({ layers }, root, { onFetchError: (key, err) => warnings.push(`${key}: ${(err as Error).message}`) });
    expect(await imp.lookup(k("run"))).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(k("run"));
    expect(await layers.has(chainId([d1.diffID, d2.diffID]) as string)).toBe(false);
    expect((await imp.lookup(k("base")))?.chainID).toBe(d1.diffID);
    // without the option the same lookup fails
    await expect((await importCache({ layers }, root)).lookup(k("run"))).rejects.toMatchObject({ code: "ERR_BLOB_NOT_FOUND" });
    const bad = path.join(dir, "bad2");
    await recordsCache(bad, { corrupt: true });
    await expect((await importCache({ layers }, bad, { onFetchError: () => undefined })).lookup(k("run"))).rejects.toMatchObject({ code: expect.stringMatching(/ERR_(DIGEST|SIZE)_MISMATCH/) });
  });

  it("image-manifest form and the v0 Items format", async () => {
    const { b1, b2, d1, d2 } = await twoLayers();
    const items = {
      Items: [
        { Blobsum: d1.digest, CacheKey: k("one"), ContentKey: sha256("c1"), DiffID: d1.diffID, Parent: "" },
        { Blobsum: d2.digest, CacheKey: k("two"), ContentKey: sha256("c1"), DiffID: d2.diffID, Parent: d1.digest },
        { CacheKey: k("empty") },
      ],
    };
    const cfgBytes = new TextEncoder().encode(JSON.stringify(items));
    const manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256(cfgBytes), size: cfgBytes.length },
      layers: [
        { mediaType: GZ, digest: d1.digest, size: b1.length },
        { mediaType: GZ, digest: d2.digest, size: b2.length },
      ],
    };
    const top = new TextEncoder().encode(JSON.stringify(manifest));
    const root = path.join(dir, "items");
    await writeLayout(root, [b1, b2, cfgBytes], { mediaType: manifest.mediaType, bytes: top }, "v0");
    const imp = await importCache({ layers }, root, { tag: "v0" });
    expect(imp.kind).toBe("items");
    expect(imp.probe(k("two"))).toBe(true);
    expect(imp.probe(k("empty"))).toBe(false);
    expect(imp.contentMapping(sha256("c1"))).toEqual([k("one"), k("two")]);
    const res = await imp.lookup(k("two"));
    expect(res?.chainID).toBe(chainId([d1.diffID, d2.diffID]));
    await expect(importCache({ layers }, root, { tag: "nope" })).rejects.toMatchObject({ code: "ERR_CACHE_MANIFEST_NOT_FOUND" });
  });

  it("inline cache in an image config (moby.buildkit.cache.v0)", async () => {
    const { b1, b2, d1, d2 } = await twoLayers();
    const records = [
      { digest: k("from"), layers: [{ layer: 0 }] },
      { digest: k("run"), layers: [{ layer: 1 }], inputs: [[{ link: 0 }]] },
    ];
    const config = {
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [d1.diffID, d2.diffID] },
      history: [{ created_by: "a" }, { created_by: "ENV x", empty_layer: true }, { created_by: "RUN b" }],
      "moby.buildkit.cache.v0": Buffer.from(JSON.stringify(records)).toString("base64"),
    };
    const cfgBytes = new TextEncoder().encode(JSON.stringify(config));
    const manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.docker.distribution.manifest.v2+json",
      config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: sha256(cfgBytes), size: cfgBytes.length },
      layers: [
        { mediaType: GZ, digest: d1.digest, size: b1.length },
        { mediaType: GZ, digest: d2.digest, size: b2.length },
      ],
    };
    const top = new TextEncoder().encode(JSON.stringify(manifest));
    const root = path.join(dir, "inline");
    await writeLayout(root, [b1, b2, cfgBytes], { mediaType: manifest.mediaType, bytes: top });
    const imp = await importCache({ layers }, root);
    expect(imp.kind).toBe("inline");
    expect(imp.chains(k("run"))[0]?.layers.map((l) => [l.diffID, l.description])).toEqual([
      [d1.diffID, "a"],
      [d2.diffID, "RUN b"],
    ]);
    expect((await imp.lookup(k("from")))?.chainID).toBe(d1.diffID);
    expect((await imp.lookup(k("run")))?.chainID).toBe(chainId([d1.diffID, d2.diffID]));
  });

  it("rejects malformed cache configs with ERR_INVALID_CACHE_CONFIG", async () => {
    const { b1, d1 } = await twoLayers();
    for (const config of [
      { layers: [{ blob: d1.digest, parent: 0 }], records: [{ digest: k("loop"), layers: [{ layer: 0 }] }] },
      { layers: [{ blob: d1.digest, parent: -1 }], records: [{ digest: k("x"), layers: [{ layer: 5 }] }] },
      { layers: [{ blob: "sha256:../../etc", parent: -1 }] },
      { records: [{ digest: k("x"), inputs: [[]] }] },
    ]) {
      const cfgBytes = new TextEncoder().encode(JSON.stringify(config));
      const index = { schemaVersion: 2, manifests: [{ mediaType: GZ, digest: d1.digest, size: b1.length }, { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256(cfgBytes), size: cfgBytes.length }] };
      const top = new TextEncoder().encode(JSON.stringify(index));
      const root = path.join(dir, `bad-${sha256(cfgBytes).slice(7, 15)}`);
      await writeLayout(root, [b1, cfgBytes], { mediaType: "application/vnd.oci.image.index.v1+json", bytes: top });
      await expect(importCache({ layers }, root)).rejects.toMatchObject({ code: "ERR_INVALID_CACHE_CONFIG" });
    }
  });
});
