/**
 * The explorer over an image in the real docker-registry (distribution 2.8,
 * through @berth/peers): what berth pushed, explained remotely, equals the
 * local explanation (layers, trees, wasted space, efficiency); a second view
 * fetches no layer blob (counted in the registry's access log); an index
 * gives the platform's manifest and its own digest; a registry that serves a
 * layer whose tar is not the config's DiffID gets a typed error and no cached
 * tree. Skips without the peer, fails under BERTH_REQUIRE_PEERS=1.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { type Digest, digestHex, sha256 } from "@berth/digest";
import { makeTar } from "@berth/image-store/tar-fixture";
import { MEDIA_TYPE_OCI_INDEX } from "@berth/oci";
import { type AccessLogEntry, type RegistryPeer, registry } from "@berth/peers";
import { RegistryClient, uploadBlob } from "@berth/registry";
import { afterAll, describe, expect, it } from "vitest";
import { type ImageService, LAYER_TREE_CACHE_DIR } from "../src/index.js";
import { freshService, tarStream } from "./helpers.js";

const reg = await registry();
afterAll(async () => {
  await reg?.stop();
});

/** Layer blob GETs since `mark` (manifests and configs are not counted). */
async function layerGets(r: RegistryPeer, mark: number, layers: readonly string[]): Promise<AccessLogEntry[]> {
  return (await r.accessLog()).slice(mark).filter((e) => e.method === "GET" && layers.some((d) => e.path.endsWith(`/blobs/${d}`)));
}

/**
 * An image built to waste space (a big file added, then removed), one layer gzip, pushed by
 * berth as `name` (which gzips the other), and `svc` a store that pulled it back: the local
 * view of what the registry holds.
 */
async function pushedWasteImage(name: string, platform?: string): Promise<{ svc: ImageService; digest: Digest; size: number; id: Digest }> {
  const { svc: builder } = await freshService();
  const base = await builder.import((async function* () {
    yield gzipSync(makeTar({ "bin/sh": "#!shell", "etc/os-release": "ID=berth-test\n", big: "b".repeat(50_000) }));
  })(), { ...(platform ? { platform } : {}) });
  await builder.build({
    base: base.id,
    layers: [tarStream({ ".wh.big": "", "app/run": `run ${platform ?? "host"}`, "etc/os-release": "ID=berth-test-2\n" })],
    createdBy: "RUN rm /big",
    tags: [name],
  });
  const pushed = await builder.push(name);
  const { svc: local } = await freshService();
  await local.pull(name, { ...(platform ? { platform } : {}) });
  return { svc: local, digest: pushed.digest, size: pushed.size, id: pushed.id };
}

describe.skipIf(!reg)("the explorer over docker-registry", { timeout: 120_000 }, () => {
  const r = reg as RegistryPeer;

  it("a pushed image explained remotely equals the local explanation; a second view fetches no layer blob", async () => {
    const name = `${r.host}/image-service-test/explore:1`;
    const local = await pushedWasteImage(name);
    const here = await local.svc.explain(name);
    const { svc, store } = await freshService();
    const layerDigests = here.layers.map((l) => l.blob!.digest);

    let mark = (await r.accessLog()).length;
    const fetched: number[] = [];
    const there = await svc.explainRemote(name, { onFetch: (l) => fetched.push(l.index) });
    expect(fetched).toEqual([0, 1]);
    expect((await layerGets(r, mark, layerDigests)).map((e) => e.status)).toEqual([200, 200]);
    // every figure the page shows, as the local view has them
    for (const k of ["id", "manifestDigest", "config", "layers", "history", "visibleBytes", "efficiency"] as const) expect(there[k], k).toEqual(here[k]);
    expect(there.manifestDigest).toBe(local.digest);
    expect(there.indexDigest).toBeNull();
    expect(there.remote).toEqual({ reference: name });
    // by hand: big [50,000, whiteout of a file 0] and etc/os-release [14, 16] occur twice: dive's wasted bytes 50,030
    expect(there.efficiency.wastedBytes).toBe(50_030);
    expect(there.layers[0]!.blob!.mediaType).toMatch(/gzip/);
    for (const i of [0, 1]) {
      expect(await svc.remoteLayerView(name, i, { image: true })).toEqual(await local.svc.layerView(name, i, { image: true }));
    }
    // the trees are cached per DiffID in this store: the second views fetched nothing, nor does a third
    mark = (await r.accessLog()).length;
    const again = await svc.explainRemote(name, { onFetch: (l) => fetched.push(l.index) });
    expect(again).toEqual(there);
    expect(fetched).toEqual([0, 1]);
    expect(await layerGets(r, mark, layerDigests)).toEqual([]);
    for (const l of here.layers) expect(existsSync(join(store.root, LAYER_TREE_CACHE_DIR, `${digestHex(l.diffID)}.json`))).toBe(true);
    // nothing but the cache was written: no image, no blob
    expect(await store.images.ids()).toEqual([]);
  });

  it("an index: the platform's manifest, and the index digest among the identities", async () => {
    const amd = await pushedWasteImage(`${r.host}/image-service-test/explore-multi:amd64`, "linux/amd64");
    const arm = await pushedWasteImage(`${r.host}/image-service-test/explore-multi:arm64`, "linux/arm64");
    const index = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_OCI_INDEX,
        manifests: [
          { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: amd.digest, size: amd.size, platform: { os: "linux", architecture: "amd64" } },
          { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: arm.digest, size: arm.size, platform: { os: "linux", architecture: "arm64" } },
        ],
      }),
    );
    const client = new RegistryClient();
    const indexDigest = await client.repository(`${r.host}/image-service-test/explore-multi`, { push: true }).putManifest("both", index, MEDIA_TYPE_OCI_INDEX);
    await client.close();
    const { svc } = await freshService();
    const x = await svc.explainRemote(`${r.host}/image-service-test/explore-multi:both`, { platform: "linux/arm64" });
    expect(x).toMatchObject({ id: arm.id, manifestDigest: arm.digest, indexDigest, remote: { platform: "linux/arm64" } });
    expect(x.repoDigests).toEqual([`${r.host}/image-service-test/explore-multi@${indexDigest}`]);
    await expect(svc.explainRemote(`${r.host}/image-service-test/explore-multi:both`, { platform: "linux/s390x" })).rejects.toMatchObject({ code: "ERR_NO_MATCHING_PLATFORM" });
    await expect(svc.explainRemote(`${r.host}/image-service-test/explore-none:1`)).rejects.toMatchObject({ code: "ERR_MANIFEST_NOT_FOUND" });
  });

  it("a layer whose tar is not the config's DiffID: ERR_DIGEST_MISMATCH, and no tree cached under that DiffID", async () => {
    const repoName = `${r.host}/image-service-test/explore-liar`;
    const client = new RegistryClient();
    const repo = client.repository(repoName, { push: true });
    const layer = makeTar({ "etc/passwd": "root:x:0:0::/root:/bin/sh\n" });
    // the config claims the DiffID of another tar: a registry (or pusher) lying about the content
    const claimed = sha256(makeTar({ "etc/passwd": "the real one\n" }));
    const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [claimed] }, config: {} }));
    const put = async (bytes: Uint8Array) => {
      const desc = { digest: sha256(bytes), size: bytes.length };
      await uploadBlob(repo, desc, async function* () {
        yield bytes;
      });
      return desc;
    };
    const cfg = await put(config);
    const lay = await put(layer);
    const manifest = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...cfg },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...lay }],
      }),
    );
    await repo.putManifest("1", manifest, "application/vnd.oci.image.manifest.v1+json");
    await client.close();
    const { svc, store } = await freshService();
    await expect(svc.explainRemote(`${repoName}:1`, { platform: "linux/amd64" })).rejects.toMatchObject({ code: "ERR_DIGEST_MISMATCH" });
    expect(existsSync(join(store.root, LAYER_TREE_CACHE_DIR, `${digestHex(claimed)}.json`))).toBe(false);
  });
});
