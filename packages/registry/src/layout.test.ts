import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sha256 } from "@berth/digest";
import { MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST } from "@berth/oci";
import { BlobInfoCache } from "./blobinfocache.js";
import { OciLayout, PARTIAL_DIR } from "./layout.js";
import { parseImageLocation } from "./location.js";
import { selectManifest } from "./platform.js";

const root = await mkdtemp(path.join(tmpdir(), "berth-layout-"));
afterAll(() => rm(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => OciLayout.open(path.join(root, `l${n++}`), { create: true });
const chunksOf = (bytes: Uint8Array, size = 1000) => (offset: number) => (async function* () {
  for (let i = offset; i < bytes.length; i += size) yield bytes.subarray(i, Math.min(i + size, bytes.length));
})();

describe("OciLayout", () => {
  it("creates oci-layout and index.json, refuses a directory that is none", async () => {
    const l = await fresh();
    expect(JSON.parse(await readFile(path.join(l.dir, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
    expect((await l.readIndex()).manifests).toEqual([]);
    await expect(OciLayout.open(path.join(root, "nothing"))).rejects.toMatchObject({ code: "ERR_LAYOUT_INVALID" });
  });

  it("resumes a blob from its partial file and verifies the whole", async () => {
    const l = await fresh();
    const bytes = new Uint8Array(10_000).map((_, i) => i % 256);
    const desc = { digest: sha256(bytes), size: bytes.length };
    await expect(l.writeBlob(desc, (o) => (async function* () {
      yield bytes.subarray(o, 4000);
      throw Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
    })())).rejects.toThrow("connection reset");
    expect(await l.partialSize(desc.digest)).toBe(4000);
    expect(await l.blobSize(desc.digest)).toBeUndefined();
    const asked: number[] = [];
    const r = await l.writeBlob(desc, (o) => {
      asked.push(o);
      return chunksOf(bytes)(o);
    });
    expect(r).toEqual({ status: "written", bytes: 6000, resumedFrom: 4000 });
    expect(asked).toEqual([4000]);
    expect(await l.blobSize(desc.digest)).toBe(10_000);
    expect(await l.partialSize(desc.digest)).toBe(0);
    expect((await l.writeBlob(desc, chunksOf(bytes))).status).toBe("exists");
  });

  it("deletes a partial file whose content turns out wrong, and leaves nothing visible", async () => {
    const l = await fresh();
    const bytes = new Uint8Array(5000).fill(7);
    const desc = { digest: sha256(bytes), size: bytes.length };
    await mkdir(path.join(l.dir, PARTIAL_DIR), { recursive: true });
    await writeFile(path.join(l.dir, PARTIAL_DIR, `sha256-${desc.digest.slice(7)}`), new Uint8Array(2000).fill(9));
    await expect(l.writeBlob(desc, chunksOf(bytes))).rejects.toMatchObject({ code: "ERR_DIGEST_MISMATCH" });
    expect(await l.partialSize(desc.digest)).toBe(0);
    expect(await l.blobSize(desc.digest)).toBeUndefined();
    expect((await l.writeBlob(desc, chunksOf(bytes))).status).toBe("written");
  });

  it("removes abandoned partial files when opened", async () => {
    const l = await fresh();
    await mkdir(path.join(l.dir, PARTIAL_DIR), { recursive: true });
    const p = path.join(l.dir, PARTIAL_DIR, `sha256-${"e".repeat(64)}`);
    await writeFile(p, "old");
    const old = new Date(Date.now() - 2 * 24 * 3600_000);
    await utimes(p, old, old);
    await OciLayout.open(l.dir);
    expect(await l.partialSize(`sha256:${"e".repeat(64)}` as never)).toBe(0);
  });

  it("names manifests by ref name, replacing a name's old target", async () => {
    const l = await fresh();
    const a = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: sha256("a"), size: 1 };
    const b = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: sha256("b"), size: 1 };
    await l.setRef("v1", a);
    await l.setRef("v2", a);
    await l.setRef("v1", b);
    expect((await l.resolve("v1")).digest).toBe(b.digest);
    expect((await l.resolve("v2")).digest).toBe(a.digest);
    expect((await l.readIndex()).manifests).toHaveLength(2);
    await expect(l.resolve("v3")).rejects.toMatchObject({ code: "ERR_LAYOUT_REF_NOT_FOUND" });
    await expect(l.resolve()).rejects.toMatchObject({ code: "ERR_LAYOUT_REF_NOT_FOUND" });
  });
});

describe("selectManifest", () => {
  const m = (platform: object, c: string) => ({ mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: sha256(c), size: 1, platform: platform as never });
  const index = {
    schemaVersion: 2 as const,
    mediaType: MEDIA_TYPE_OCI_INDEX,
    manifests: [m({ os: "linux", architecture: "386" }, "386"), m({ os: "linux", architecture: "amd64" }, "amd64"), m({ os: "linux", architecture: "arm", variant: "v6" }, "v6"), m({ os: "unknown", architecture: "unknown" }, "att")],
  };
  it("prefers an exact match, else the first compatible one, never an attestation", () => {
    expect(selectManifest(index, { os: "linux", architecture: "amd64" }).digest).toBe(sha256("amd64"));
    expect(selectManifest(index, { os: "linux", architecture: "arm", variant: "v7" }).digest).toBe(sha256("v6"));
    expect(() => selectManifest(index, { os: "linux", architecture: "s390x" })).toThrow(expect.objectContaining({ code: "ERR_NO_MATCHING_PLATFORM" }));
  });
});

describe("BlobInfoCache", () => {
  it("remembers where blobs are and DiffIDs, merges with the file on flush, and bounds its size", async () => {
    const dir = path.join(root, "bic");
    const d1 = sha256("one");
    const d2 = sha256("two");
    const a = await BlobInfoCache.open(dir);
    const b = await BlobInfoCache.open(dir);
    a.recordKnown("reg:5000", "team/a", d1);
    a.recordDiffId(d1, d2, "gzip");
    await a.flush();
    b.recordKnown("reg:5000", "team/b", d1);
    await b.flush();
    const c = await BlobInfoCache.open(dir);
    expect(c.candidates("reg:5000", d1).sort()).toEqual(["team/a", "team/b"]);
    expect(c.candidates("reg:5000", d1, "team/a")).toEqual(["team/b"]);
    expect(c.diffIdOf(d1)).toBe(d2);
    expect(c.compressedOf(d2)).toEqual([{ digest: d1, compression: "gzip" }]);
    const small = BlobInfoCache.memory({ reposPerBlob: 2 });
    for (const r of ["x", "y", "z"]) small.recordKnown("r", r, d1);
    expect(small.candidates("r", d1)).toHaveLength(3); // pruned on flush only
    await writeFile(path.join(dir, "blob-info-cache.json"), "{broken");
    expect((await BlobInfoCache.open(dir)).candidates("reg:5000", d1)).toEqual([]);
  });
});

describe("parseImageLocation", () => {
  it("reads docker:// references and oci: layouts, refusing the rest with ERR_INVALID_LOCATION", () => {
    expect(parseImageLocation("docker://busybox")).toMatchObject({ transport: "docker", reference: { domain: "docker.io", path: "library/busybox", tag: "latest" } });
    expect(parseImageLocation("docker://127.0.0.1:5000/a/b@sha256:" + "a".repeat(64))).toMatchObject({ transport: "docker", reference: { domain: "127.0.0.1:5000", digest: `sha256:${"a".repeat(64)}` } });
    expect(parseImageLocation("oci:/tmp/x:v1")).toEqual({ transport: "oci", dir: "/tmp/x", refName: "v1" });
    expect(parseImageLocation("oci:rel")).toEqual({ transport: "oci", dir: "rel" });
    for (const bad of ["busybox", "docker://UPPER", "oci:", "oci:/x:bad ref"]) expect(() => parseImageLocation(bad)).toThrow(expect.objectContaining({ code: "ERR_INVALID_LOCATION" }));
  });
});
