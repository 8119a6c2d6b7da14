/**
 * The explorer's remote endpoints against the real docker-registry (through
 * @berth/peers): an image pushed from one served store (its layers gzipped
 * on the way), explained through another (empty) server's `/ui/api/remote/…`,
 * fetches each layer once, and equals that server's local explanation once it
 * pulled the image (and the first server's, but for manifest and blobs); its
 * layer view too; errors keep the explorer's `{code, message}` shape. Skips without the
 * peer, fails under BERTH_REQUIRE_PEERS=1.
 */
import type { ImageExplanation, LayerView } from "@berth/image-service";
import { type RegistryPeer, registry } from "@berth/peers";
import { afterAll, describe, expect, it } from "vitest";
import { serveStore } from "../src/index.js";
import { tempDir } from "./helpers.js";
import { exploredStore } from "./ui-fixtures.js";

const reg = await registry();
afterAll(async () => {
  await reg?.stop();
});

describe.skipIf(!reg)("GET /ui/api/remote/…", { timeout: 120_000 }, () => {
  it("explains an image in the registry as the store that pushed it does, fetching its layers once", async () => {
    const r = reg as RegistryPeer;
    const a = await exploredStore();
    const { dir, cleanup } = tempDir("berth-ui-remote-");
    const b = await serveStore({ root: dir, port: 0, log: { format: "none" }, sweepIntervalMs: 0 });
    try {
      const name = `${r.host}/server-test/waste:1`;
      await a.server.service.tag("waste:1", name);
      await a.server.service.push(name); // the layers go gzip-compressed: another manifest than the store's
      const mark = (await r.accessLog()).length;
      const res = await fetch(`${b.url}/ui/api/remote/${encodeURIComponent(name)}`);
      expect(res.status).toBe(200);
      const there = (await res.json()) as ImageExplanation;
      expect(there).toMatchObject({ id: (await a.server.service.inspect(name)).id, indexDigest: null, remote: { reference: name } });
      const blobGets = async (from: number) =>
        (await r.accessLog()).slice(from).filter((e) => e.method === "GET" && there.layers.some((l) => e.path.endsWith(`/blobs/${l.blob!.digest}`)));
      expect(await blobGets(mark)).toHaveLength(2);
      const again = (await r.accessLog()).length;
      expect((await fetch(`${b.url}/ui/api/remote/${encodeURIComponent(name)}`)).status).toBe(200);
      expect(await blobGets(again)).toEqual([]);
      // the image pulled: the server's local view of it is what the remote view showed
      const layerOf = (path: string) => fetch(`${b.url}${path}/layers/1?image=1`).then((x) => x.json() as Promise<LayerView>);
      const remoteLayer = await layerOf(`/ui/api/remote/${encodeURIComponent(name)}`);
      await b.service.pull(name);
      const here = (await (await fetch(`${b.url}/ui/api/images/${encodeURIComponent(name)}`)).json()) as ImageExplanation;
      for (const k of ["id", "manifestDigest", "layers", "efficiency", "visibleBytes", "config"] as const) expect(there[k], k).toEqual(here[k]);
      expect(remoteLayer).toEqual(await layerOf(`/ui/api/images/${encodeURIComponent(name)}`));
      // and as the store that built it sees it, but for the manifest and the converted layer blobs
      const built = (await (await fetch(`${a.base}/ui/api/images/${encodeURIComponent(name)}`)).json()) as ImageExplanation;
      for (const k of ["id", "efficiency", "visibleBytes", "config"] as const) expect(there[k], k).toEqual(built[k]);

      const missing = await fetch(`${b.url}/ui/api/remote/${encodeURIComponent(`${r.host}/server-test/none:1`)}`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ code: "ERR_MANIFEST_NOT_FOUND" });
      const badIndex = await fetch(`${b.url}/ui/api/remote/${encodeURIComponent(name)}/layers/x`);
      expect([badIndex.status, ((await badIndex.json()) as { code: string }).code]).toEqual([400, "ERR_SERVER_UI_BAD_REQUEST"]);
    } finally {
      await b.close();
      cleanup();
      await a.close();
    }
  });
});
