/**
 * Judges against the real docker-registry (distribution 2.8) in its three
 * auth modes, and skopeo: push an OCI layout, pull it back byte-identical,
 * interoperate with skopeo, second push = HEADs only, second repository = mount.
 */
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sha256 } from "@berth/digest";
import { type AccessLogEntry, exec, execOk, type RegistryAuth, type RegistryPeer, registry, requirePeer, tokenIssuer } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobInfoCache } from "../src/blobinfocache.js";
import { RegistryClient } from "../src/client.js";
import { copyImage } from "../src/copy.js";
import { layoutDestination, layoutSource, registryDestination, registrySource } from "../src/endpoints.js";
import { OciLayout } from "../src/layout.js";
import { layoutBlobs, type TestImage, writeTestImage } from "./images.js";

const issuer = await tokenIssuer();
const skopeo = await requirePeer("skopeo");
const probe = await registry();
await probe?.stop();

const MODES: { name: string; auth: () => RegistryAuth }[] = [
  { name: "no auth", auth: () => ({ kind: "none" }) },
  { name: "htpasswd basic auth", auth: () => ({ kind: "htpasswd" }) },
  { name: "token auth", auth: () => ({ kind: "token", issuer: issuer! }) },
];

const work = await mkdtemp(path.join(tmpdir(), "berth-registry-test-"));
afterAll(async () => {
  await issuer?.stop();
  await rm(work, { recursive: true, force: true });
});

/** Requests after `mark`, without the `/v2/` pings. */
function since(log: AccessLogEntry[], mark: number): AccessLogEntry[] {
  return log.slice(mark).filter((e) => e.path !== "/v2/");
}

describe.skipIf(!probe).each(MODES)("docker-registry with $name", ({ name, auth }) => {
  let reg: RegistryPeer;
  let client: RegistryClient;
  let image: TestImage;
  const slug = name.split(" ")[0]!;
  const creds = () => (reg.user ? ["--creds", `${reg.user.username}:${reg.user.password}`] : ["--no-creds"]);

  beforeAll(async () => {
    reg = (await registry({ auth: auth() }))!;
    client = new RegistryClient({ credentials: async () => reg.user });
    image = await writeTestImage(path.join(work, `${slug}-src`), "v1", { layerSizes: [300_000, 200_000, 100_000], platforms: ["linux/amd64", "linux/arm64"] });
  });
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
  });

  it("pushes an OCI layout index and pulls it back byte-identical", async () => {
    const src = await OciLayout.open(image.dir);
    const tokensBefore = issuer?.requests.length ?? 0;
    const pushed = await copyImage(layoutSource(src, "v1"), registryDestination(client.repository(`${reg.host}/registry-test/app`, { push: true })), { tag: "v1" });
    expect(pushed.digest).toBe(image.digest);
    if (reg.auth.kind === "token") {
      // one token for the whole push (pull,push on the repository), reused by every request
      expect(issuer!.requests.slice(tokensBefore).map((r) => [r.grant, r.scopes])).toEqual([["basic", ["repository:registry-test/app:pull,push"]]]);
    }
    expect(pushed.blobs.every((b) => b.status === "uploaded")).toBe(true);
    const repo = client.repository(`${reg.host}/registry-test/app`);
    expect(await repo.listTags()).toEqual(["v1"]);
    const head = await repo.headManifest("v1");
    expect(head).toEqual({ digest: image.digest, mediaType: image.mediaType, size: expect.any(Number) });

    const outDir = path.join(work, `${slug}-pulled`);
    const out = await OciLayout.open(outDir, { create: true });
    const pulled = await copyImage(registrySource(repo, "v1"), layoutDestination(out), { tag: "v1" });
    expect(pulled.digest).toBe(image.digest);
    expect(await layoutBlobs(outDir)).toEqual(await layoutBlobs(image.dir));
    expect((await out.resolve("v1")).digest).toBe(image.digest);
    const indexBytes = await readFile(path.join(outDir, "blobs", "sha256", image.digest.slice(7)));
    expect(sha256(new Uint8Array(indexBytes))).toBe(image.digest);

    // one platform out of the index
    const one = await OciLayout.open(path.join(work, `${slug}-arm64`), { create: true });
    const sel = await copyImage(registrySource(repo, "v1"), layoutDestination(one), { tag: "arm", platform: { os: "linux", architecture: "arm64" } });
    expect(sel.digest).toBe(image.manifests["linux/arm64"]);
    expect(sel.selected?.platform).toEqual({ os: "linux", architecture: "arm64" });
  });

  it("pings the registry's challenge; anonymous callers get only what the registry allows", async () => {
    const c = await client.connection(reg.host);
    expect(c.origin).toBe(`http://${reg.host}`); // loopback: https tried first, then plain http
    expect(c.ping.challenge?.scheme).toBe({ none: undefined, htpasswd: "basic", token: "bearer" }[reg.auth.kind]);
    const anon = new RegistryClient();
    try {
      const repo = anon.repository(`${reg.host}/registry-test/app`, { push: true });
      const blob = new TextEncoder().encode("anonymous");
      const push = () =>
        repo.uploadBlob({ digest: sha256(blob), size: blob.length }, async function* () {
          yield blob;
        });
      if (reg.auth.kind === "none") {
        expect((await anon.repository(`${reg.host}/registry-test/app`).getManifest("v1")).digest).toBe(image.digest);
        expect((await push()).status).toBe("uploaded");
      } else if (reg.auth.kind === "token") {
        // the issuer grants anonymous pull: reads work, the push token has no push action
        expect((await anon.repository(`${reg.host}/registry-test/app`).getManifest("v1")).digest).toBe(image.digest);
        await expect(push()).rejects.toMatchObject({ code: "ERR_REGISTRY_UNAUTHORIZED" });
      } else {
        await expect(anon.repository(`${reg.host}/registry-test/app`).getManifest("v1")).rejects.toMatchObject({ code: "ERR_REGISTRY_UNAUTHORIZED" });
        await expect(push()).rejects.toMatchObject({ code: "ERR_REGISTRY_UNAUTHORIZED" });
      }
    } finally {
      await anon.close();
    }
  });

  it("sends only HEADs on a second push of the unchanged image", async () => {
    const mark = (await reg.accessLog()).length;
    const fresh = new RegistryClient({ credentials: async () => reg.user });
    try {
      const again = await copyImage(layoutSource(await OciLayout.open(image.dir), "v1"), registryDestination(fresh.repository(`${reg.host}/registry-test/app`, { push: true })), { tag: "v1" });
      expect(again.blobs.every((b) => b.status === "exists")).toBe(true);
      expect(again.manifestsWritten).toBe(0);
    } finally {
      await fresh.close();
    }
    const sent = since(await reg.accessLog(), mark);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.filter((e) => e.method !== "HEAD")).toEqual([]);
  });

  it("mounts from the first repository when pushing to a second one", async () => {
    const cache = BlobInfoCache.memory();
    const src = await OciLayout.open(image.dir);
    await copyImage(layoutSource(src, "v1"), registryDestination(client.repository(`${reg.host}/registry-test/app`, { push: true })), { tag: "v1", blobInfoCache: cache });
    const mark = (await reg.accessLog()).length;
    const r = await copyImage(layoutSource(src, "v1"), registryDestination(client.repository(`${reg.host}/registry-test/other`, { push: true })), { tag: "v1", blobInfoCache: cache });
    expect(r.blobs.every((b) => b.status === "mounted" && b.mountedFrom === "registry-test/app")).toBe(true);
    const sent = since(await reg.accessLog(), mark);
    const mounts = sent.filter((e) => e.method === "POST");
    expect(mounts.length).toBe(r.blobs.length);
    expect(mounts.every((e) => /mount=sha256%3A|mount=sha256:/.test(e.path) && e.path.includes("from=registry-test") && e.status === 201)).toBe(true);
    expect(sent.filter((e) => e.method === "PATCH" || (e.method === "PUT" && e.path.includes("/blobs/")))).toEqual([]);
  });

  it.skipIf(!skopeo)("pulls what skopeo pushed with the same manifest digest, and skopeo reads what berth pushed", async () => {
    const single = await writeTestImage(path.join(work, `${slug}-single`), "s1", { layerSizes: [50_000, 70_000] });
    await execOk(skopeo!, ["copy", "--quiet", "--dest-tls-verify=false", ...creds().map((c) => c.replace("--creds", "--dest-creds").replace("--no-creds", "--dest-no-creds")), `oci:${single.dir}:s1`, `docker://${reg.host}/registry-test/by-skopeo:s1`]);
    const inspected = JSON.parse((await execOk(skopeo!, ["inspect", "--tls-verify=false", ...creds(), `docker://${reg.host}/registry-test/by-skopeo:s1`])).stdout) as { Digest: string };
    const out = await OciLayout.open(path.join(work, `${slug}-from-skopeo`), { create: true });
    const pulled = await copyImage(registrySource(client.repository(`${reg.host}/registry-test/by-skopeo`), "s1"), layoutDestination(out), { tag: "s1" });
    expect(pulled.digest).toBe(inspected.Digest);

    // berth pushed registry-test/app:v1 (an index): skopeo sees the same bytes and copies it out
    const raw = await exec(skopeo!, ["inspect", "--raw", "--tls-verify=false", ...creds(), `docker://${reg.host}/registry-test/app:v1`]);
    expect(raw.code).toBe(0);
    expect(sha256(raw.stdout)).toBe(image.digest);
    const skopeoOut = path.join(work, `${slug}-skopeo-out`);
    await execOk(skopeo!, ["copy", "--quiet", "--all", "--src-tls-verify=false", ...creds().map((c) => c.replace("--creds", "--src-creds").replace("--no-creds", "--src-no-creds")), `docker://${reg.host}/registry-test/app:v1`, `oci:${skopeoOut}:v1`]);
    expect((await (await OciLayout.open(skopeoOut)).resolve("v1")).digest).toBe(image.digest);
    expect(await layoutBlobs(skopeoOut)).toEqual(await layoutBlobs(image.dir));
  });
});

describe.skipIf(!probe)("docker-registry: chunked uploads, damaged sources, missing things", () => {
  let reg: RegistryPeer;
  let client: RegistryClient;
  beforeAll(async () => {
    reg = (await registry())!;
    client = new RegistryClient();
  });
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
  });

  it("pushes in chunks (PATCH with Content-Range) and the registry commits the same blobs", async () => {
    const image = await writeTestImage(path.join(work, "chunked-src"), "c1", { layerSizes: [150_000, 90_000] });
    const mark = (await reg.accessLog()).length;
    const r = await copyImage(layoutSource(await OciLayout.open(image.dir), "c1"), registryDestination(client.repository(`${reg.host}/registry-test/chunked`, { push: true }), { chunkSize: 64 << 10 }), { tag: "c1" });
    expect(r.digest).toBe(image.digest);
    const patches = since(await reg.accessLog(), mark).filter((e) => e.method === "PATCH");
    const expected = r.blobs.reduce((n, b) => n + Math.ceil(b.size / (64 << 10)), 0);
    expect(patches.length).toBe(expected);
    expect(patches.every((e) => e.status === 202)).toBe(true);
    const out = await OciLayout.open(path.join(work, "chunked-out"), { create: true });
    await copyImage(registrySource(client.repository(`${reg.host}/registry-test/chunked`), "c1"), layoutDestination(out), { tag: "c1" });
    expect(await layoutBlobs(out.dir)).toEqual(await layoutBlobs(image.dir));
  });

  it("reads a blob in 1 MiB pieces, or as the socket gives it to a destination that gathers (gather: false)", async () => {
    const repo = client.repository(`${reg.host}/registry-test/pieces`, { push: true });
    const bytes = new Uint8Array(3_500_000).map((_, i) => (i * 7919) % 251);
    const desc = { digest: sha256(bytes), size: bytes.length };
    await repo.uploadBlob(desc, async function* (offset) {
      yield bytes.subarray(offset);
    });
    const sizes = async (gather?: boolean) => {
      const out: number[] = [];
      const src = registrySource(repo, "unused");
      for await (const c of src.blob(desc, 0, undefined, gather === undefined ? undefined : { gather })) out.push(c.length);
      return out;
    };
    const gathered = await sizes();
    expect(gathered.slice(0, -1).every((n) => n >= 1 << 20)).toBe(true);
    expect(gathered.reduce((n, x) => n + x, 0)).toBe(bytes.length);
    const raw = await sizes(false);
    expect(raw.length).toBeGreaterThan(gathered.length);
    expect(raw.some((n) => n < 1 << 20)).toBe(true);
    expect(raw.reduce((n, x) => n + x, 0)).toBe(bytes.length);
  });

  it("uploads bytes of unknown digest in one streamed PATCH; a stream that fails leaves nothing", async () => {
    const repo = client.repository(`${reg.host}/registry-test/streamed`, { push: true });
    const bytes = new Uint8Array(700_000).map((_, i) => (i * 7919) % 251);
    const mark = (await reg.accessLog()).length;
    let seen = 0;
    const r = await repo.uploadStream(
      (async function* () {
        for (let i = 0; i < bytes.length; i += 65_536) yield bytes.subarray(i, i + 65_536);
      })(),
      { onProgress: (n) => (seen = n) },
    );
    expect(r).toEqual({ digest: sha256(bytes), size: bytes.length });
    expect(seen).toBe(bytes.length);
    expect(await repo.headBlob(r.digest)).toEqual({ size: bytes.length });
    expect(since(await reg.accessLog(), mark).filter((e) => e.method === "PATCH")).toHaveLength(1);

    const failing = (async function* () {
      yield bytes.subarray(0, 1000);
      throw new Error("source broke");
    })();
    await expect(repo.uploadStream(failing)).rejects.toThrow();
    expect(await repo.headBlob(sha256(bytes.subarray(0, 1000)))).toBeUndefined();
  });

  it("refuses to push a layout blob whose bytes are not its digest, and the registry keeps nothing of it", async () => {
    const image = await writeTestImage(path.join(work, "damaged-src"), "d1", { layerSizes: [40_000] });
    const layer = image.layers[0]!;
    const fh = await open(path.join(image.dir, "blobs", "sha256", layer.digest.slice(7)), "r+");
    await fh.write(Buffer.from("damage"), 0, 6, 1000);
    await fh.close();
    const repo = client.repository(`${reg.host}/registry-test/damaged`, { push: true });
    await expect(copyImage(layoutSource(await OciLayout.open(image.dir), "d1"), registryDestination(repo), { tag: "d1" })).rejects.toMatchObject({ code: "ERR_DIGEST_MISMATCH" });
    expect(await repo.headBlob(layer.digest)).toBeUndefined();
    expect(await repo.headManifest("d1")).toBeUndefined();
  });

  it("names what is missing with a code", async () => {
    const repo = client.repository(`${reg.host}/registry-test/nothing-here`);
    await expect(repo.getManifest("v1")).rejects.toMatchObject({ code: "ERR_MANIFEST_NOT_FOUND" });
    await expect(repo.listTags()).rejects.toMatchObject({ code: "ERR_REPOSITORY_NOT_FOUND" });
    const chunks = repo.blobChunks({ digest: sha256("absent"), size: 6 });
    await expect(chunks.next()).rejects.toMatchObject({ code: "ERR_BLOB_NOT_FOUND" });
    expect(await repo.referrers(sha256("absent"))).toEqual([]);
  });
});
