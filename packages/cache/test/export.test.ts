import path from "node:path";
import { layerDigests, sha256 } from "@berth/digest";
import { type LayerStore, openLayerStore } from "@berth/layer-store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { planCacheExport } from "../src/export.js";
import { contentStoreFetcher } from "../src/fetcher.js";
import { CACHE_CONFIG_MEDIA_TYPE, importCache } from "../src/import.js";
import { makeTarGz, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => Promise<void>;
let a: LayerStore;
let b: LayerStore;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  a = await openLayerStore({ root: path.join(dir, "a") });
  b = await openLayerStore({ root: path.join(dir, "b") });
});
afterEach(async () => {
  await a.close();
  await b.close();
  await cleanup();
});

const k = (s: string) => sha256(`key:${s}`);
const T = "2025-03-01T10:00:00.000Z";

/** Two chains in store `a`: base → run, and other alone. */
async function chains() {
  const blobs = [await makeTarGz({ "a.txt": "one" }), await makeTarGz({ "b.txt": "two" }), await makeTarGz({ "c.txt": "three" })];
  const base = await a.register([blobs[0]!]);
  const run = await a.register([blobs[1]!], base.chainID);
  const other = await a.register([blobs[2]!]);
  return { base, run, other, blobs };
}

describe("planCacheExport", () => {
  it("writes BuildKit's cache config and image-manifest form; importCache reads it back: lookups hit with the same chains, links and content keys survive", async () => {
    const { base, run, other } = await chains();
    const selector = sha256("content");
    const plan = await planCacheExport(
      { layers: a },
      [
        { key: k("base"), chainID: base.chainID, createdAt: T },
        { key: k("run"), chainID: run.chainID, inputs: [[{ key: k("base"), selector }]] },
        { key: k("nolayer"), inputs: [[{ key: k("run") }]] },
        { key: k("other"), chainID: other.chainID },
      ],
      { now: new Date(T) },
    );
    expect(plan.records).toBe(4);
    expect(plan.results).toBe(3);
    const manifest = JSON.parse(new TextDecoder().decode(plan.manifest.bytes));
    expect(manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(manifest.config).toEqual({ mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: plan.config.digest, size: plan.config.size });
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual([base.blob.digest, run.blob.digest, other.blob.digest]);
    expect(manifest.layers[1].annotations).toEqual({ "containerd.io/uncompressed": run.diffID, "buildkit/createdat": T });
    const config = JSON.parse(new TextDecoder().decode(plan.config.bytes));
    expect(config.layers.map((l: { parent: number }) => l.parent)).toEqual([-1, 0, -1]);
    expect(config.layers[0].annotations).toEqual({ mediaType: base.blob.mediaType, diffID: base.diffID, size: base.blob.size, createdAt: T });
    expect(config.records[2]).toEqual({ digest: k("nolayer"), inputs: [[{ link: 1 }]] });

    // the documents beside the layer blobs, read by the importer into another store
    await a.content.put(plan.config.bytes);
    await a.content.put(plan.manifest.bytes);
    const imp = await importCache({ layers: b }, contentStoreFetcher(a.content), { manifest: { digest: plan.manifest.digest, size: plan.manifest.size, mediaType: plan.manifest.mediaType } });
    expect(imp.kind).toBe("records");
    expect(imp.keys().sort()).toEqual([k("base"), k("run"), k("nolayer"), k("other")].sort());
    expect((await imp.lookup(k("run")))?.chainID).toBe(run.chainID);
    expect((await imp.lookup(k("other")))?.chainID).toBe(other.chainID);
    expect(await imp.lookup(k("nolayer"))).toBeUndefined();
    expect(imp.inputs(k("run"))).toEqual([[{ key: k("base"), selector }]]);
    expect(imp.inputs(k("nolayer"))).toEqual([[{ key: k("run") }]]);
    expect(imp.contentMapping(selector)).toEqual([k("run")]);
    expect((await b.get(run.chainID)).parent).toBe(base.chainID);
    expect(imp.chains(k("base"))[0]?.createdAt).toBe(T);
  });

  it("is deterministic; a key given twice keeps both results; each blob is listed once", async () => {
    const { base, run } = await chains();
    const records = [
      { key: k("x"), chainID: base.chainID },
      { key: k("x"), chainID: run.chainID },
      { key: k("y"), chainID: run.chainID },
    ];
    const one = await planCacheExport({ layers: a }, records, { now: new Date(T) });
    const two = await planCacheExport({ layers: a }, records, { now: new Date(T) });
    expect(two.manifest.digest).toBe(one.manifest.digest);
    const config = JSON.parse(new TextDecoder().decode(one.config.bytes));
    expect(config.records).toHaveLength(2);
    expect(config.records[0].layers).toEqual([
      { layer: 0, createdAt: T },
      { layer: 1, createdAt: T },
    ]);
    expect(one.layers).toHaveLength(2);
    expect(run.parent).toBe(base.chainID);
  });

  it("refuses a key that is not a digest and a link to a key not exported (ERR_INVALID_CACHE_RECORD); an unknown chain is ERR_LAYER_NOT_FOUND", async () => {
    const { base } = await chains();
    await expect(planCacheExport({ layers: a }, [{ key: "nope" as never, chainID: base.chainID }])).rejects.toMatchObject({ code: "ERR_INVALID_CACHE_RECORD" });
    await expect(planCacheExport({ layers: a }, [{ key: k("a"), inputs: [[{ key: k("missing") }]] }])).rejects.toMatchObject({ code: "ERR_INVALID_CACHE_RECORD" });
    await expect(planCacheExport({ layers: a }, [{ key: k("a"), inputs: [[]] }])).rejects.toMatchObject({ code: "ERR_INVALID_CACHE_RECORD" });
    const unknown = (await layerDigests([await makeTarGz({ "z.txt": "z" })])).diffID;
    await expect(planCacheExport({ layers: a }, [{ key: k("a"), chainID: unknown }])).rejects.toMatchObject({ code: "ERR_LAYER_NOT_FOUND" });
  });
});
