/**
 * Pull and push between the store and the real docker-registry (distribution
 * 2.8, through @berth/peers): a round trip between two stores (same image ID,
 * the manifest digest kept as a RepoDigest, a second push that is HEADs only,
 * a second pull that fetches no blob), platform choice from an index, the
 * errors, skopeo both ways; then the judges with the real dockerd — what berth pushed,
 * `docker pull` gets with the same image ID, and what `docker push` sent,
 * berth pulls with the same image ID and manifest digest. Skips without the
 * peers, fails under BERTH_REQUIRE_PEERS=1.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { hasCode, sha256 } from "@berth/digest";
import { makeTar } from "@berth/image-store/tar-fixture";
import { type AccessLogEntry, buildImage, busyboxBase, dockerd, execOk, type RegistryPeer, registry, requirePeer } from "@berth/peers";
import { formatPlatform, hostPlatform, MEDIA_TYPE_OCI_INDEX } from "@berth/oci";
import type { Store } from "@berth/image-store";
import { RegistryClient } from "@berth/registry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOB_INFO_CACHE_DIR, type ImageService, type RegistryEvent } from "../src/index.js";
import { freshService, makeDir } from "./helpers.js";

const reg = await registry();
const peer = await dockerd();
const skopeo = await requirePeer("skopeo");
const zstdProgram = await requirePeer("zstd");
afterAll(async () => {
  await reg?.stop();
});

/** Requests since `mark`, without the `/v2/` pings. */
async function requestsSince(r: RegistryPeer, mark: number): Promise<AccessLogEntry[]> {
  return (await r.accessLog()).slice(mark).filter((e) => e.path !== "/v2/");
}

/** An image of two layers (a base and an app on it) in a fresh store, tagged `name`. */
async function twoLayerImage(name: string, platform?: string): Promise<{ svc: ImageService; store: Store; id: string; dir: string }> {
  const { svc, store, dir } = await freshService();
  const base = await svc.build({ layers: [await makeDir(dir, "base", { "etc/os-release": "ID=berth-test\n" })], ...(platform ? { platform } : {}) });
  const app = await svc.build({
    base: base.id,
    layers: [await makeDir(dir, "app", { "app/run.sh": `#!/bin/sh\necho ${platform ?? "host"}\n` })],
    changes: ['CMD ["/app/run.sh"]'],
    tags: [name],
  });
  return { svc, store, id: app.id, dir };
}

describe.skipIf(!reg)("pull and push with docker-registry", { timeout: 120_000 }, () => {
  const r = reg as RegistryPeer;
  const name = () => `${r.host}/image-service-test/app:1`;

  it("round trip between two stores: same ID, RepoDigest kept, second push HEADs only, second pull fetches no blob", async () => {
    const { svc: a, store: storeA, id } = await twoLayerImage(name());
    const events: RegistryEvent[] = [];
    const pushed = await a.push(name(), { onProgress: (e) => events.push(e) });
    expect(pushed.id).toBe(id);
    expect(pushed.blobs.map((b) => b.status)).toEqual(["uploaded", "uploaded", "uploaded"]);
    expect(pushed.manifestsWritten).toBe(1);
    // first, before anything is sent: the layers gzipped on the way are named by DiffID, the manifest is the store's
    const diffIDs = (await a.inspect(id)).config.rootfs.diff_ids;
    expect(events[0]).toMatchObject({ type: "resolved", digest: (await storeA.images.manifest(id)).digest });
    expect((events[0] as { layers: { digest: string }[] }).layers.map((l) => l.digest)).toEqual(diffIDs);
    expect(events.filter((e) => e.type === "blob-done")).toHaveLength(3);
    expect((await a.inspect(name())).repoDigests).toEqual([`${r.host}/image-service-test/app@${pushed.digest}`]);

    let mark = (await r.accessLog()).length;
    const again = await a.push(name());
    expect(again.digest).toBe(pushed.digest);
    expect(again.blobs.every((b) => b.status === "exists" && b.bytes === 0)).toBe(true);
    expect(again.manifestsWritten).toBe(0);
    expect(new Set((await requestsSince(r, mark)).map((e) => e.method))).toEqual(new Set(["HEAD"]));

    const { svc: b, store } = await freshService();
    const firstPull: RegistryEvent[] = [];
    const pulled = await b.pull(name(), { onProgress: (e) => firstPull.push(e) });
    expect(firstPull[0]).toMatchObject({ type: "resolved", present: false });
    expect(pulled).toMatchObject({ id, digest: pushed.digest, manifestDigest: pushed.digest, status: "downloaded", tag: "1", name: `${r.host}/image-service-test/app`, path: "image-service-test/app" });
    expect(pulled.blobs.map((x) => x.status)).toEqual(["written", "written", "written"]);
    const details = await b.inspect(name());
    expect(details.id).toBe(id);
    expect(details.repoDigests).toEqual([`${r.host}/image-service-test/app@${pushed.digest}`]);
    expect((await store.fsck()).ok).toBe(true);
    // the store's layers are the registry's blobs: pushing back from the second store changes nothing
    expect((await store.images.manifest(id)).digest).toBe(pushed.digest);

    mark = (await r.accessLog()).length;
    const secondPull: RegistryEvent[] = [];
    const second = await b.pull(name(), { onProgress: (e) => secondPull.push(e) });
    expect(second.status).toBe("up-to-date");
    expect(secondPull[0]).toMatchObject({ type: "resolved", present: true }); // the store holds the image: dockerd shows no layer step
    expect(second.blobs.every((x) => x.status === "exists" && x.bytes === 0)).toBe(true);
    expect((await requestsSince(r, mark)).filter((e) => e.path.includes("/blobs/"))).toEqual([]);

    // by digest: no tag, the digest reference only
    const { svc: c } = await freshService();
    const byDigest = await c.pull(`${r.host}/image-service-test/app@${pushed.digest}`);
    expect(byDigest).toMatchObject({ id, digest: pushed.digest, status: "downloaded" });
    expect(byDigest.tag).toBeUndefined();
    const cd = await c.inspect(id);
    expect([cd.repoTags, cd.repoDigests]).toEqual([[], [`${r.host}/image-service-test/app@${pushed.digest}`]]);
  });

  it("compresses layers once: gzip by default, streamed; a second repository mounts; none sends the tars; a pulled image's layers mount", async () => {
    const { svc: a, store, id } = await twoLayerImage(`${r.host}/image-service-test/gz:1`);
    const diffIDs = (await a.inspect(id)).config.rootfs.diff_ids;
    let mark = (await r.accessLog()).length;
    const first = await a.push(`${r.host}/image-service-test/gz:1`);
    const manifest = JSON.parse(new TextDecoder().decode((await new RegistryClient().repository(`${r.host}/image-service-test/gz`).getManifest("1")).bytes)) as {
      layers: Array<{ mediaType: string; digest: string }>;
    };
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(["application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar+gzip"]);
    expect(manifest.layers.map((l) => l.digest)).not.toContain(diffIDs[0]);
    expect(first.blobs.map((b) => b.status)).toEqual(["uploaded", "uploaded", "uploaded"]);
    // the layers went in one streamed PATCH each (their digests were learnt as they were sent)
    expect((await requestsSince(r, mark)).filter((e) => e.method === "PATCH")).toHaveLength(2);

    // another repository of the registry: every blob mounted, nothing compressed or sent
    await a.tag(`${r.host}/image-service-test/gz:1`, `${r.host}/image-service-test/gz-other:1`);
    mark = (await r.accessLog()).length;
    const other = await a.push(`${r.host}/image-service-test/gz-other:1`);
    expect(other.digest).toBe(first.digest);
    expect(other.blobs.map((b) => b.status)).toEqual(["mounted", "mounted", "mounted"]);
    expect(other.bytesTransferred).toBe(0);
    expect((await requestsSince(r, mark)).filter((e) => e.method === "PATCH" || (e.method === "PUT" && e.path.includes("/blobs/")))).toEqual([]);

    // without the cache, compressing again gives the same blobs (zlib is deterministic)
    await rm(join(store.root, BLOB_INFO_CACHE_DIR), { recursive: true, force: true });
    await a.tag(`${r.host}/image-service-test/gz:1`, `${r.host}/image-service-test/gz-third:1`);
    expect((await a.push(`${r.host}/image-service-test/gz-third:1`)).digest).toBe(first.digest);

    // none: the tars themselves, their digests the DiffIDs
    await a.tag(`${r.host}/image-service-test/gz:1`, `${r.host}/image-service-test/plain:1`);
    const plain = await a.push(`${r.host}/image-service-test/plain:1`, { compression: "none" });
    expect(plain.blobs.slice(1).map((b) => b.digest)).toEqual(diffIDs);
    await expect(a.push(`${r.host}/image-service-test/plain:1`, { compression: "lz4" as "gzip" })).rejects.toMatchObject({ code: "ERR_INVALID_COMPRESSION" });
    // zstd (Node's zlib, or the zstd program on Node 20): zstd layers, the same blobs again without the cache, pulled back as the same image
    if ("createZstdCompress" in zlib || zstdProgram) {
      await a.tag(`${r.host}/image-service-test/gz:1`, `${r.host}/image-service-test/zst:1`);
      const z = await a.push(`${r.host}/image-service-test/zst:1`, { compression: "zstd" });
      const zm = JSON.parse(new TextDecoder().decode((await new RegistryClient().repository(`${r.host}/image-service-test/zst`).getManifest("1")).bytes)) as { layers: Array<{ mediaType: string }> };
      expect(zm.layers.map((l) => l.mediaType)).toEqual(["application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.layer.v1.tar+zstd"]);
      await rm(join(store.root, BLOB_INFO_CACHE_DIR), { recursive: true, force: true });
      await a.tag(`${r.host}/image-service-test/gz:1`, `${r.host}/image-service-test/zst2:1`);
      expect((await a.push(`${r.host}/image-service-test/zst2:1`, { compression: "zstd" })).digest).toBe(z.digest);
      const { svc: c } = await freshService();
      expect(await c.pull(`${r.host}/image-service-test/zst:1`)).toMatchObject({ id, digest: z.digest });
    } else {
      await expect(a.push(`${r.host}/image-service-test/plain:1`, { compression: "zstd" })).rejects.toMatchObject({ code: "ERR_COMPRESSION_UNSUPPORTED" });
    }

    // pulled into another store and pushed to another repository: the pull recorded where the blobs are
    const { svc: b } = await freshService();
    await b.pull(`${r.host}/image-service-test/gz:1`);
    await b.tag(`${r.host}/image-service-test/gz:1`, `${r.host}/image-service-test/gz-pulled:1`);
    const again = await b.push(`${r.host}/image-service-test/gz-pulled:1`);
    expect(again).toMatchObject({ digest: first.digest, bytesTransferred: 0 });
    expect(again.blobs.every((x) => x.status === "mounted" && x.mountedFrom === "image-service-test/gz")).toBe(true);
  });

  it.skipIf(!skopeo)("skopeo reads what berth pushed, and berth pulls what skopeo pushed", async () => {
    const { svc: a, store, id } = await twoLayerImage(`${r.host}/image-service-test/skopeo:1`);
    const pushed = await a.push(`${r.host}/image-service-test/skopeo:1`);
    const inspected = JSON.parse((await execOk(skopeo!, ["inspect", "--tls-verify=false", `docker://${r.host}/image-service-test/skopeo:1`])).stdout) as { Digest: string };
    expect(inspected.Digest).toBe(pushed.digest);
    // skopeo pushes from the store root, which is an OCI layout, under another tag (compressing
    // the stored layers its own way: another manifest, the same image)
    await execOk(skopeo!, ["copy", "--dest-tls-verify=false", `oci:${store.root}:${r.host}/image-service-test/skopeo:1`, `docker://${r.host}/image-service-test/skopeo:2`]);
    const theirs = JSON.parse((await execOk(skopeo!, ["inspect", "--tls-verify=false", `docker://${r.host}/image-service-test/skopeo:2`])).stdout) as { Digest: string };
    const { svc: b } = await freshService();
    const pulled = await b.pull(`${r.host}/image-service-test/skopeo:2`);
    expect(pulled).toMatchObject({ id, digest: theirs.Digest });
  });

  it("chooses a platform from an index and records the index digest", async () => {
    const amd = await twoLayerImage(`${r.host}/image-service-test/multi:amd64`, "linux/amd64");
    const arm = await twoLayerImage(`${r.host}/image-service-test/multi:arm64`, "linux/arm64");
    const ma = await amd.svc.push(`${r.host}/image-service-test/multi:amd64`);
    const mb = await arm.svc.push(`${r.host}/image-service-test/multi:arm64`);
    const index = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_OCI_INDEX,
        manifests: [
          { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: ma.digest, size: ma.size, platform: { os: "linux", architecture: "amd64" } },
          { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: mb.digest, size: mb.size, platform: { os: "linux", architecture: "arm64" } },
        ],
      }),
    );
    const client = new RegistryClient();
    const indexDigest = await client.repository(`${r.host}/image-service-test/multi`, { push: true }).putManifest("both", index, MEDIA_TYPE_OCI_INDEX);
    await client.close();

    const { svc } = await freshService();
    const pulled = await svc.pull(`${r.host}/image-service-test/multi:both`, { platform: "linux/arm64" });
    expect(pulled).toMatchObject({ id: arm.id, digest: indexDigest, manifestDigest: mb.digest, platform: "linux/arm64" });
    expect((await svc.inspect(`${r.host}/image-service-test/multi:both`)).repoDigests).toEqual([`${r.host}/image-service-test/multi@${indexDigest}`]);
    // pushed back, the index goes as it was pulled: nothing sent, the digest unchanged
    let mark = (await r.accessLog()).length;
    const back = await svc.push(`${r.host}/image-service-test/multi:both`);
    expect(back).toMatchObject({ digest: indexDigest, manifestsWritten: 0, bytesTransferred: 0 });
    expect((await requestsSince(r, mark)).filter((e) => e.method !== "HEAD" && e.method !== "GET")).toEqual([]);
    // to a new tag of the repository: the index again, under that tag
    mark = (await r.accessLog()).length;
    const retagged = await svc.tag(`${r.host}/image-service-test/multi:both`, `${r.host}/image-service-test/multi:again`);
    expect(retagged.id).toBe(arm.id);
    expect(await svc.push(`${r.host}/image-service-test/multi:again`)).toMatchObject({ digest: indexDigest, manifestsWritten: 1, bytesTransferred: 0 });
    expect((await requestsSince(r, mark)).filter((e) => e.method === "PUT").map((e) => e.path)).toEqual(["/v2/image-service-test/multi/manifests/again"]);

    const host = formatPlatform(hostPlatform());
    if (host === "linux/amd64" || host === "linux/arm64") {
      const { svc: other } = await freshService();
      const byDefault = await other.pull(`${r.host}/image-service-test/multi:both`);
      expect(byDefault.platform).toBe(host);
      expect(byDefault.id).toBe(host === "linux/amd64" ? amd.id : arm.id);
    }
    await expect(svc.pull(`${r.host}/image-service-test/multi:both`, { platform: "linux/s390x" })).rejects.toMatchObject({ code: "ERR_NO_MATCHING_PLATFORM" });
    // a single-platform image pulled with another explicit platform
    await expect(svc.pull(`${r.host}/image-service-test/multi:arm64`, { platform: "linux/amd64" })).rejects.toMatchObject({ code: "ERR_PLATFORM_MISMATCH" });
  });

  it("fails with typed errors and leaves the store as it was", async () => {
    const { svc, store } = await freshService();
    await expect(svc.pull(`${r.host}/image-service-test/none:1`)).rejects.toMatchObject({ code: "ERR_MANIFEST_NOT_FOUND" });
    expect(await store.images.ids()).toEqual([]);
    await expect(svc.push(`${r.host}/image-service-test/none:1`)).rejects.toMatchObject({ code: "ERR_IMAGE_NOT_FOUND" });
    await expect(svc.push(`${r.host}/image-service-test/none@sha256:${"0".repeat(64)}`)).rejects.toMatchObject({ code: "ERR_PUSH_BY_DIGEST" });
    const err = await svc.pull("127.0.0.1:1/image-service-test/none:1").catch((e: unknown) => e);
    expect(hasCode(err, "ERR_REGISTRY_UNAVAILABLE")).toBe(true);
    expect((await store.fsck()).ok).toBe(true);
  });

  it("refuses a layer that does not match its DiffID, keeping nothing and moving no tag", async () => {
    const layer = makeTar({ "etc/motd": "hello\n" });
    const config = new TextEncoder().encode(
      JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [`sha256:${"1".repeat(64)}`] } }),
    );
    const manifest = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
      }),
    );
    const client = new RegistryClient();
    const repo = client.repository(`${r.host}/image-service-test/bad`, { push: true });
    for (const bytes of [layer, config]) {
      await repo.uploadBlob({ digest: sha256(bytes), size: bytes.length }, async function* (offset) {
        yield bytes.subarray(offset);
      });
    }
    await repo.putManifest("1", manifest, "application/vnd.oci.image.manifest.v1+json");
    await client.close();

    const { svc, store, dir } = await freshService();
    const before = await svc.build({ layers: [await makeDir(dir, "x", { x: "x\n" })], tags: [`${r.host}/image-service-test/bad:1`] });
    const err = await svc.pull(`${r.host}/image-service-test/bad:1`).catch((e: unknown) => e);
    expect(hasCode(err, "ERR_DIGEST_MISMATCH")).toBe(true);
    expect(await store.images.ids()).toEqual([before.id]);
    expect(await store.references.resolve(`${r.host}/image-service-test/bad:1`)).toBe(before.id);
    await store.gc();
    expect(await store.content.has(sha256(layer))).toBe(false);
    expect((await store.fsck()).ok).toBe(true);
  });
});

describe.skipIf(!reg || !peer)("judged by the real dockerd", { timeout: 300_000 }, () => {
  const r = reg as RegistryPeer;
  const p = peer!;
  const pid = process.pid;
  let pushedName: string;
  let dockerName: string;

  beforeAll(() => {
    pushedName = `${r.host}/image-service-test/berth-pushed:${pid}`;
    dockerName = `${r.host}/image-service-test/docker-pushed:${pid}`;
  });
  afterAll(async () => {
    for (const n of [pushedName, dockerName]) await p.docker(["rmi", "-f", n]);
  });

  it("docker pull of what berth pushed gives the same image ID and RepoDigest", async () => {
    const { svc, id } = await twoLayerImage(pushedName);
    const pushed = await svc.push(pushedName);
    await p.run(["pull", pushedName], { timeoutMs: 120_000 });
    const [inspect] = JSON.parse((await p.run(["image", "inspect", pushedName])).stdout) as Array<{ Id: string; RepoDigests: string[] }>;
    expect(inspect!.Id).toBe(id);
    expect(inspect!.RepoDigests).toContain(`${r.host}/image-service-test/berth-pushed@${pushed.digest}`);
  });

  it("berth pull of what docker pushed gives the same image ID and manifest digest", async () => {
    await busyboxBase(p);
    const built = await buildImage(p, { tag: dockerName, dockerfile: "FROM berth-test/busybox:1\nCOPY f /f\n", files: { f: { content: "from docker\n", mode: 0o644, mtime: 0 } } });
    await p.run(["push", dockerName], { timeoutMs: 120_000 });
    const [inspect] = JSON.parse((await p.run(["image", "inspect", dockerName])).stdout) as Array<{ Id: string; RepoDigests: string[] }>;
    const repoDigest = inspect!.RepoDigests.find((d) => d.startsWith(`${r.host}/`))!;
    expect(inspect!.Id).toBe(built.id);

    const { svc, store } = await freshService();
    const pulled = await svc.pull(dockerName);
    expect(pulled.id).toBe(inspect!.Id);
    expect(`${r.host}/image-service-test/docker-pushed@${pulled.digest}`).toBe(repoDigest);
    expect((await svc.inspect(dockerName)).repoDigests).toEqual([repoDigest]);
    expect((await store.fsck()).ok).toBe(true);
    // the store keeps its own OCI manifest; pushed back, the image goes under docker's manifest, unchanged
    expect((await store.images.manifest(pulled.id)).digest).not.toBe(pulled.digest);
    const mark = (await r.accessLog()).length;
    const back = await svc.push(dockerName);
    expect(back).toMatchObject({ digest: pulled.digest, manifestsWritten: 0, bytesTransferred: 0 });
    expect((await requestsSince(r, mark)).filter((e) => e.method !== "HEAD" && e.method !== "GET")).toEqual([]);
  });
});
