/**
 * StoreRegistryBackend over a store on disk: uploads that fail, are aborted,
 * mismatch or whose process is killed leave no visible blob; a GC during an
 * upload and after it keeps what the registry holds; concurrent pushes of
 * one blob all succeed with one blob; image manifests become store images
 * (and store images are served); artifacts and indexes survive GC until
 * deleted; the repository ↔ reference mapping.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { type Digest, sha256 } from "@berth/digest";
import { openStore } from "@berth/image-store";
import { makeTar } from "@berth/image-store/tar-fixture";
import { describe, expect, it } from "vitest";
import { type AppendRequest, StoreRegistryBackend } from "../src/index.js";
import { freshService } from "./helpers.js";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

function chunk(bytes: Uint8Array, start?: number): AppendRequest {
  return {
    ...(start !== undefined ? { start } : {}),
    body: (async function* () {
      yield bytes;
    })(),
    signal: new AbortController().signal,
  };
}

async function push(b: StoreRegistryBackend, repo: string, bytes: Uint8Array): Promise<Digest> {
  const u = await b.createUpload(repo);
  await b.appendUpload(repo, u.id, chunk(bytes, 0));
  return (await b.commitUpload(repo, u.id, sha256(bytes), new AbortController().signal)).digest;
}

async function listBlobs(store: { content: { list(): AsyncIterable<{ digest: Digest; size: number }> } }) {
  const out: Array<{ digest: Digest; size: number }> = [];
  for await (const b of store.content.list()) out.push(b);
  return out;
}

async function ingestFiles(root: string): Promise<string[]> {
  return readdir(join(root, "ingest")).catch(() => []);
}

function imageConfig(diffIDs: string[]): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: diffIDs }, history: diffIDs.map(() => ({ created_by: "test" })) }),
  );
}

function manifestOf(config: Uint8Array, layers: Uint8Array[], extra: Record<string, unknown> = {}): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(l), size: l.length })),
      ...extra,
    }),
  );
}

describe("uploads", () => {
  it("a body that fails part way keeps what came; a digest mismatch leaves nothing visible and ends the session", async () => {
    const { store } = await freshService();
    const b = new StoreRegistryBackend(store);
    const u = await b.createUpload("x");
    const failing: AppendRequest = {
      body: (async function* () {
        yield new Uint8Array(10).fill(1);
        throw new Error("client went away");
      })(),
      signal: new AbortController().signal,
    };
    await expect(b.appendUpload("x", u.id, failing)).rejects.toThrow("client went away");
    expect((await b.getUpload("x", u.id)).offset).toBe(10);
    await expect(b.appendUpload("x", u.id, chunk(new Uint8Array(5), 3))).rejects.toMatchObject({ code: "ERR_UPLOAD_OFFSET", details: { offset: 10 } });
    const wrong = sha256(new Uint8Array([9]));
    await expect(b.commitUpload("x", u.id, wrong, new AbortController().signal)).rejects.toMatchObject({ code: "ERR_DIGEST_MISMATCH" });
    expect(await store.content.has(wrong)).toBe(false);
    expect(await store.content.has(sha256(new Uint8Array(10).fill(1)))).toBe(false);
    await expect(b.getUpload("x", u.id)).rejects.toMatchObject({ code: "ERR_UPLOAD_UNKNOWN" });
    expect(await ingestFiles(store.root)).toEqual([]);
  });

  it("cancel and the idle sweep discard the ingest", async () => {
    const { store } = await freshService();
    const b = new StoreRegistryBackend(store, { uploadIdleTimeoutMs: 1 });
    const a = await b.createUpload("x");
    await b.appendUpload("x", a.id, chunk(new Uint8Array(100)));
    await b.cancelUpload("x", a.id);
    const c = await b.createUpload("x");
    await b.appendUpload("x", c.id, chunk(new Uint8Array(100)));
    await b.sweep(Date.now() + 10);
    await expect(b.getUpload("x", c.id)).rejects.toMatchObject({ code: "ERR_UPLOAD_UNKNOWN" });
    expect(await ingestFiles(store.root)).toEqual([]);
    expect(await listBlobs(store)).toEqual([]);
  });

  it("a GC during an upload and after it keeps the blob; after the grace period an unreferenced blob goes", async () => {
    const { store } = await freshService();
    const b = new StoreRegistryBackend(store, { blobGraceMs: 60_000 });
    const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
    const u = await b.createUpload("x");
    await b.appendUpload("x", u.id, chunk(bytes.subarray(0, 100_000), 0));
    await store.gc();
    await b.appendUpload("x", u.id, chunk(bytes.subarray(100_000), 100_000));
    const digest = (await b.commitUpload("x", u.id, sha256(bytes), new AbortController().signal)).digest;
    await store.gc();
    expect(await store.content.has(digest)).toBe(true);
    expect((await b.statBlob({ repository: "x", membersOnly: true }, digest)).size).toBe(bytes.length);
    await b.sweep(Date.now() + 120_000);
    await store.gc();
    expect(await store.content.has(digest)).toBe(false);
  });

  it("concurrent pushes of one blob all succeed with one blob", async () => {
    const { store } = await freshService();
    const b = new StoreRegistryBackend(store);
    const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 7) % 256);
    const digests = await Promise.all(Array.from({ length: 6 }, (_, i) => push(b, `r${i % 3}`, bytes)));
    expect(new Set(digests)).toEqual(new Set([sha256(bytes)]));
    const blobs = await listBlobs(store);
    expect(blobs).toEqual([{ digest: sha256(bytes), size: bytes.length }]);
    for (const r of ["r0", "r1", "r2"]) expect((await b.statBlob({ repository: r, membersOnly: true }, sha256(bytes))).size).toBe(bytes.length);
    expect(await ingestFiles(store.root)).toEqual([]);
  });

  it("a blob a HEAD said exists is kept for the manifest that names it, though what kept it goes (an rmi and a GC between)", async () => {
    const { store } = await freshService();
    const b = new StoreRegistryBackend(store);
    const tar = makeTar({ "shared.txt": "held by an image only" });
    const layer = await store.layers.register(
      (async function* () {
        yield tar;
      })(),
    );
    const config = imageConfig([layer.diffID]);
    const image = await store.images.create(config);
    await store.references.tag("imported:1", image.id);
    // a pusher of another repository HEADs both blobs: they exist, so it sends neither
    for (const d of [layer.blob.digest, image.id]) expect((await b.statBlob({ repository: "pushed", membersOnly: false }, d)).digest).toBe(d);
    // the image that kept them goes, and a GC runs, before the pusher's manifest comes
    await store.references.untag("imported:1");
    await store.images.delete(image.id);
    await store.gc();
    const { digest } = await b.putManifest("pushed", { content: manifestOf(config, [tar]), contentType: OCI_MANIFEST, reference: { tag: "1" } });
    expect(await store.references.resolve("pushed:1")).toBe(image.id);
    expect(await store.content.has(digest)).toBe(true);
    expect((await store.fsck()).ok).toBe(true);
  });

  it("withoutGc holds a GC off until its function ends; what the function pins, the GC keeps", async () => {
    const { store } = await freshService();
    const bytes = new TextEncoder().encode("unreferenced");
    const lease = await store.lease();
    await store.content.put(bytes, { digest: sha256(bytes) }, { lease });
    await lease.release();
    let release!: () => void;
    const held = store.withoutGc(async () => {
      await new Promise<void>((r) => {
        release = r;
      });
      await store.pins.write("test.keep", { blobs: [sha256(bytes)] });
    });
    let collected = false;
    const gc = store.gc().then(() => {
      collected = true;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(collected).toBe(false);
    release();
    await held;
    await gc;
    expect(await store.content.has(sha256(bytes))).toBe(true);
    await store.pins.remove("test.keep");
    await store.gc();
    expect(await store.content.has(sha256(bytes))).toBe(false);
  });

  it("a killed process's upload leaves no visible blob, and GC removes its ingest", async () => {
    const { store } = await freshService();
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { openStore } from "@berth/image-store";
         import { StoreRegistryBackend } from "@berth/image-service";
         const store = await openStore({ root: ${JSON.stringify(store.root)} });
         const b = new StoreRegistryBackend(store);
         const u = await b.createUpload("x");
         await b.appendUpload("x", u.id, { body: (async function* () { yield new Uint8Array(4096).fill(7); })(), signal: new AbortController().signal });
         process.stdout.write("ready\\n");
         setInterval(() => {}, 1000);`,
      ],
      { cwd: join(import.meta.dirname, ".."), stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
      child.on("exit", (code) => reject(new Error(`child exited ${code}`)));
    });
    expect((await ingestFiles(store.root)).length).toBe(1);
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const reopened = await openStore({ root: store.root });
    try {
      expect(await reopened.content.has(sha256(new Uint8Array(4096).fill(7)))).toBe(false);
      await reopened.gc();
      expect(await ingestFiles(store.root)).toEqual([]);
      expect((await reopened.fsck()).ok).toBe(true);
    } finally {
      await reopened.close();
    }
  });
});

describe("manifests over the store", () => {
  it("a pushed image manifest is an image of the store with the config's ID; the tag is the store's reference", async () => {
    const { store, svc } = await freshService();
    const b = new StoreRegistryBackend(store);
    const layer = makeTar({ "hello.txt": "hi" });
    const config = imageConfig([sha256(layer)]);
    await push(b, "team/x", layer);
    await push(b, "team/x", config);
    const manifest = manifestOf(config, [layer]);
    const { digest } = await b.putManifest("team/x", { content: manifest, contentType: OCI_MANIFEST, reference: { tag: "2" } });
    const id = sha256(config);
    expect(await store.references.resolve("team/x:2")).toBe(id);
    expect(await store.references.referencesOf(id)).toEqual([`docker.io/team/x:2`, `docker.io/team/x@${digest}`]);
    expect((await svc.list()).some((i) => i.id === id)).toBe(true);
    // served byte for byte, by tag and digest
    expect(Buffer.from((await b.getManifest("team/x", { tag: "2" })).content)).toEqual(Buffer.from(manifest));
    expect((await b.getManifest("team/x", { digest })).digest).toBe(digest);
    expect((await b.listTags("team/x", { limit: 10 })).items).toEqual(["2"]);
    // a GC keeps it all
    await store.gc();
    expect(await store.content.has(digest)).toBe(true);
    expect((await store.fsck()).ok).toBe(true);
  });

  it("a store image is served under its repository: app and library/app are docker.io/library/app", async () => {
    const { store } = await freshService();
    const b = new StoreRegistryBackend(store);
    const layer = await store.layers.register(
      (async function* () {
        yield makeTar({ "a.txt": "a" });
      })(),
    );
    const image = await store.images.create(imageConfig([layer.diffID]));
    await store.references.tag("app:1", image.id);
    const own = await store.images.manifest(image.id);
    for (const repo of ["app", "library/app"]) {
      const m = await b.getManifest(repo, { tag: "1" });
      expect(m.digest).toBe(own.digest);
      expect((await b.getManifest(repo, { digest: own.digest })).digest).toBe(own.digest);
      expect((await b.statBlob({ repository: repo, membersOnly: true }, image.id)).digest).toBe(image.id);
      expect((await b.statBlob({ repository: repo, membersOnly: true }, layer.blob.digest)).size).toBe(layer.blob.size);
    }
    await expect(b.statBlob({ repository: "other", membersOnly: true }, image.id)).rejects.toMatchObject({ code: "ERR_BLOB_UNKNOWN" });
    expect((await b.listRepositories({ limit: 10 }, () => true)).items).toEqual(["app"]);
    // delete by digest: the image leaves the repository (and the store, nothing else naming it)
    await b.deleteManifest("app", own.digest);
    await expect(b.getManifest("app", { tag: "1" })).rejects.toMatchObject({ code: "ERR_MANIFEST_UNKNOWN" });
    expect(await store.images.has(image.id)).toBe(false);
  });

  it("an artifact with a subject and an index survive GC; deleting them frees what only they kept", async () => {
    const { store } = await freshService();
    const b = new StoreRegistryBackend(store, { blobGraceMs: 0 });
    const cfg = new TextEncoder().encode("{}");
    const payload = new TextEncoder().encode("signature bytes");
    await push(b, "x", cfg);
    await push(b, "x", payload);
    const subject = createHash("sha256").update("not pushed").digest("hex");
    const artifact = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: "application/vnd.example.sig",
        config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(cfg), size: cfg.length },
        layers: [{ mediaType: "application/octet-stream", digest: sha256(payload), size: payload.length }],
        subject: { mediaType: OCI_MANIFEST, digest: `sha256:${subject}`, size: 10 },
      }),
    );
    const put = await b.putManifest("x", { content: artifact, contentType: OCI_MANIFEST, reference: { tag: "sig" } });
    expect(put.subject).toBe(`sha256:${subject}`);
    const index = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: put.digest, size: artifact.length }] }));
    const idx = await b.putManifest("x", { content: index, contentType: OCI_INDEX, reference: { tag: "idx" } });
    await b.sweep(Date.now() + 1000);
    await store.gc();
    for (const d of [put.digest, idx.digest, sha256(cfg), sha256(payload)]) expect(await store.content.has(d)).toBe(true);
    expect((await b.listReferrers("x", `sha256:${subject}` as Digest, {})).manifests.map((m) => m.digest)).toEqual([put.digest]);
    expect((await store.fsck()).ok).toBe(true);
    // the index goes: the artifact stays (its own tag); then the artifact goes: its blobs are free
    await b.deleteManifest("x", idx.digest);
    await store.gc();
    expect(await store.content.has(idx.digest)).toBe(false);
    expect(await store.content.has(put.digest)).toBe(true);
    await b.deleteManifest("x", put.digest);
    await b.sweep(Date.now() + 1000); // the pushed blobs' grace period is over: nothing keeps them
    await store.gc();
    for (const d of [put.digest, sha256(cfg), sha256(payload)]) expect(await store.content.has(d)).toBe(false);
    await expect(b.listTags("x", { limit: 10 })).rejects.toMatchObject({ code: "ERR_NAME_UNKNOWN" });
  });

  it("a manifest naming a blob the repository does not have is refused, and nothing is stored", async () => {
    const { store } = await freshService();
    const b = new StoreRegistryBackend(store);
    const config = imageConfig([]);
    await push(b, "a", config);
    const manifest = manifestOf(config, []);
    await expect(b.putManifest("b", { content: manifest, contentType: OCI_MANIFEST, reference: { tag: "1" } })).rejects.toMatchObject({ code: "ERR_MANIFEST_BLOB_UNKNOWN" });
    expect(await store.content.has(sha256(manifest))).toBe(false);
  });
});
