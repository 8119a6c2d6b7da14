/**
 * `exportCache` as a build tool calls it, against the real docker-registry
 * (@berth/peers; skips without it, fails under BERTH_REQUIRE_PEERS=1): its own
 * keys over chains of the store go out in BuildKit's image-manifest form; the
 * same cache to a second repository of the registry mounts every layer;
 * another store imports it back (`withRegistryCache`) and every lookup hits
 * with the same chains and links. Into an OCI layout directory too.
 */
import { join } from "node:path";
import { sha256 } from "@berth/digest";
import { type RegistryPeer, registry } from "@berth/peers";
import { afterAll, describe, expect, it } from "vitest";
import { exportCache, withCacheSource, withRegistryCache } from "../src/index.js";
import { freshService, makeDir } from "./helpers.js";

const reg = await registry();
afterAll(async () => {
  await reg?.stop();
});

const key = (s: string) => sha256(`build-tool-key:${s}`);

describe.skipIf(!reg)("exportCache with docker-registry", { timeout: 120_000 }, () => {
  const r = reg as RegistryPeer;

  it("exports a build tool's keys, mounts them into a second repository, and imports back with every lookup hitting", async () => {
    const { svc, store, dir } = await freshService();
    const base = await svc.build({ layers: [await makeDir(dir, "base", { "etc/os-release": "ID=cache-export\n" })] });
    const app = await svc.build({ base: base.id, layers: [await makeDir(dir, "app", { "app/main.js": "console.log(1)\n" })] });
    const baseChain = base.layers[0]!.chainID;
    const appChain = app.layers[0]!.chainID;
    const records = [
      { key: key("FROM"), chainID: baseChain },
      { key: key("COPY app"), chainID: appChain, inputs: [[{ key: key("FROM"), selector: sha256("app/") }]] },
      { key: key("ENV"), inputs: [[{ key: key("COPY app") }]] },
    ];
    const first = await exportCache(store, records, `docker://${r.host}/cache-export/one:buildcache`);
    expect(first.records).toBe(3);
    expect(first.results).toBe(2);
    expect(first.blobs.map((b) => b.status).sort()).toEqual(["uploaded", "uploaded", "uploaded"]);
    expect(first.manifestsWritten).toBe(1);

    // the same cache to another repository: the layers mount, the config (new there) too
    const second = await exportCache(store, records, `docker://${r.host}/cache-export/two:buildcache`);
    expect(second.blobs.filter((b) => b.status === "mounted").length).toBeGreaterThanOrEqual(2);
    expect(second.blobs.every((b) => b.status !== "uploaded" || b.digest === second.configDigest)).toBe(true);

    // another store reads it back
    const other = await freshService();
    await withRegistryCache(other.store, `${r.host}/cache-export/two:buildcache`, {}, async (imp) => {
      expect(imp.kind).toBe("records");
      expect((await imp.lookup(key("COPY app")))?.chainID).toBe(appChain);
      expect((await imp.lookup(key("FROM")))?.chainID).toBe(baseChain);
      expect(await imp.lookup(key("ENV"))).toBeUndefined();
      expect(imp.inputs(key("ENV"))).toEqual([[{ key: key("COPY app") }]]);
      expect(imp.contentMapping(sha256("app/"))).toEqual([key("COPY app")]);
    });

    // and to an OCI layout directory, read by the layout importer
    const layout = join(dir, "cache-layout");
    await exportCache(store, records, layout);
    await withCacheSource(other.store, layout, {}, async (imp) => {
      expect((await imp.lookup(key("COPY app")))?.chainID).toBe(appChain);
    });
  });

  it("refuses records that link to a key not exported, before writing anything", async () => {
    const { store } = await freshService();
    const mark = (await r.accessLog()).length;
    await expect(exportCache(store, [{ key: key("a"), inputs: [[{ key: key("b") }]] }], `docker://${r.host}/cache-export/bad:1`)).rejects.toMatchObject({ code: "ERR_INVALID_CACHE_RECORD" });
    expect((await r.accessLog()).slice(mark)).toEqual([]);
  });
});
