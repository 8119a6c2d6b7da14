import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { sha256 } from "@berth/digest";
import { MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST } from "@berth/oci";
import { fakeServer, type FakeServer, json } from "../test/fake-server.js";
import { RegistryClient } from "./client.js";

let server: FakeServer | undefined;
let client: RegistryClient | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  server = client = undefined;
});

const manifest = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${"a".repeat(64)}`, size: 2 }, layers: [] }));
const mDigest = sha256(manifest);

async function repoOn(handler: Parameters<typeof fakeServer>[0], options: ConstructorParameters<typeof RegistryClient>[0] = {}) {
  server = await fakeServer((req, res, body, n) => (req.url === "/v2/" ? res.end("{}") : handler(req, res, body, n)));
  client = new RegistryClient({ retry: { retries: 0 }, ...options });
  return client.repository(`${server.host}/team/app`);
}

describe("manifests", () => {
  it("sends the full Accept list and checks Docker-Content-Digest against the bytes", async () => {
    const repo = await repoOn((_req, res) => res.writeHead(200, { "content-type": MEDIA_TYPE_OCI_MANIFEST, "docker-content-digest": mDigest }).end(manifest));
    const got = await repo.getManifest("v1");
    expect(got).toMatchObject({ digest: mDigest, mediaType: MEDIA_TYPE_OCI_MANIFEST, size: manifest.length });
    const accept = server!.seen.at(-1)!.headers.accept!;
    for (const t of ["application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"]) expect(accept).toContain(t);
    expect(accept).not.toContain("v1+prettyjws");
  });
  it("refuses bytes that do not match the digest asked for or the one the registry claims", async () => {
    const repo = await repoOn((_req, res) => res.writeHead(200, { "content-type": MEDIA_TYPE_OCI_MANIFEST, "docker-content-digest": `sha256:${"b".repeat(64)}` }).end(manifest));
    await expect(repo.getManifest("v1")).rejects.toMatchObject({ code: "ERR_DIGEST_MISMATCH" });
    await expect(repo.getManifest(`sha256:${"c".repeat(64)}`)).rejects.toMatchObject({ code: "ERR_DIGEST_MISMATCH" });
  });
  it("refuses schema 1, oversize manifests, and maps 404 to ERR_MANIFEST_NOT_FOUND", async () => {
    const v1 = new TextEncoder().encode(JSON.stringify({ schemaVersion: 1, name: "x" }));
    const repo = await repoOn((req, res) => {
      if (req.url!.endsWith("/old")) return res.writeHead(200, { "content-type": "application/json" }).end(v1);
      if (req.url!.endsWith("/big")) return res.writeHead(200, { "content-type": MEDIA_TYPE_OCI_MANIFEST }).end(Buffer.alloc(5000, 32));
      json(res, 404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
    }, { maxManifestSize: 4096 });
    await expect(repo.getManifest("old")).rejects.toMatchObject({ code: "ERR_MANIFEST_UNSUPPORTED" });
    await expect(repo.getManifest("big")).rejects.toMatchObject({ code: "ERR_MANIFEST_TOO_LARGE" });
    const nf = await repo.getManifest("gone").catch((e: unknown) => e);
    expect(nf).toMatchObject({ code: "ERR_MANIFEST_NOT_FOUND", details: { status: 404, errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] } });
    expect(await repo.headManifest("gone")).toBeUndefined();
    await expect(repo.getManifest("bad tag!")).rejects.toMatchObject({ code: "ERR_INVALID_NAME" });
  });
  it("a 401 for a registry without credentials is ERR_REGISTRY_UNAUTHORIZED, a 403 ERR_REGISTRY_DENIED", async () => {
    const repo = await repoOn((req, res) => json(res, req.url!.includes("denied") ? 403 : 401, { errors: [{ code: "DENIED" }] }));
    await expect(repo.getManifest("x")).rejects.toMatchObject({ code: "ERR_REGISTRY_UNAUTHORIZED" });
    await expect(repo.getManifest("denied")).rejects.toMatchObject({ code: "ERR_REGISTRY_DENIED" });
  });
});

describe("tags and referrers", () => {
  it("follows Link headers through tag pages", async () => {
    const all = ["a", "b", "c", "d", "e"];
    const repo = await repoOn((req, res) => {
      const u = new URL(req.url!, "http://x");
      const n = Number(u.searchParams.get("n"));
      const last = u.searchParams.get("last");
      const from = last ? all.indexOf(last) + 1 : 0;
      const page = all.slice(from, from + n);
      const more = from + n < all.length;
      json(res, 200, { name: "team/app", tags: page }, more ? { link: `</v2/team/app/tags/list?n=${n}&last=${page.at(-1)}>; rel="next"` } : {});
    });
    expect(await repo.listTags({ pageSize: 2 })).toEqual(all);
    expect(server!.seen.filter((r) => r.url.includes("tags/list"))).toHaveLength(3);
  });
  it("reads the referrers API with its filter, and falls back to the sha256-<hex> tag", async () => {
    const sig = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: `sha256:${"1".repeat(64)}`, size: 10, artifactType: "application/sig" };
    const sbom = { ...sig, digest: `sha256:${"2".repeat(64)}`, artifactType: "application/sbom" };
    const index = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [sig, sbom] }));
    let api = true;
    const repo = await repoOn((req, res) => {
      if (req.url!.includes("/referrers/")) {
        if (!api) return json(res, 404, { errors: [{ code: "NOT_FOUND" }] });
        return res.writeHead(200, { "content-type": MEDIA_TYPE_OCI_INDEX }).end(index);
      }
      if (req.url!.endsWith(`/manifests/sha256-${"9".repeat(64)}`)) return res.writeHead(200, { "content-type": MEDIA_TYPE_OCI_INDEX }).end(index);
      json(res, 404, { errors: [{ code: "MANIFEST_UNKNOWN" }] });
    });
    const subject = `sha256:${"9".repeat(64)}` as const;
    expect((await repo.referrers(subject as never, { artifactType: "application/sbom" })).map((d) => d.digest)).toEqual([sbom.digest]);
    expect(server!.seen.at(-1)!.url).toContain("artifactType=application%2Fsbom");
    api = false;
    expect((await repo.referrers(subject as never)).length).toBe(2);
    expect(await repo.referrers(`sha256:${"8".repeat(64)}` as never)).toEqual([]);
  });
});

describe("uploads", () => {
  function uploadServer(minChunk?: number) {
    const state = { received: Buffer.alloc(0), ranges: [] as string[], committed: "" };
    const handler: Parameters<typeof fakeServer>[0] = (req, res, body) => {
      const url = new URL(req.url!, "http://x");
      if (req.method === "HEAD") return res.writeHead(404).end();
      if (req.method === "POST") return res.writeHead(202, { location: "/v2/team/app/blobs/uploads/u1?_state=s", ...(minChunk ? { "oci-chunk-min-length": String(minChunk) } : {}) }).end();
      if (req.method === "PATCH") {
        state.ranges.push(String(req.headers["content-range"]));
        state.received = Buffer.concat([state.received, body]);
        return res.writeHead(202, { location: "/v2/team/app/blobs/uploads/u1?_state=t", range: `0-${state.received.length - 1}` }).end();
      }
      if (req.method === "PUT") {
        state.received = Buffer.concat([state.received, body]);
        state.committed = url.searchParams.get("digest") ?? "";
        const d = `sha256:${createHash("sha256").update(state.received).digest("hex")}`;
        return res.writeHead(d === state.committed ? 201 : 400, { "docker-content-digest": d }).end();
      }
      if (req.method === "DELETE") return res.writeHead(204).end();
      res.writeHead(500).end();
    };
    return { state, handler };
  }
  const blob = new Uint8Array(250_000).map((_, i) => (i * 7) % 251);
  const desc = { digest: sha256(blob), size: blob.length };
  const source = (offset: number) => (async function* () {
    for (let i = offset; i < blob.length; i += 30_000) yield blob.subarray(i, Math.min(i + 30_000, blob.length));
  })();

  it("uploads monolithically: POST then one PUT with the body", async () => {
    const { state, handler } = uploadServer();
    const repo = await repoOn(handler);
    expect(await repo.uploadBlob(desc, source)).toEqual({ status: "uploaded", bytes: blob.length });
    expect(state.ranges).toEqual([]);
    expect(server!.seen.map((r) => r.method)).toEqual(["GET", "HEAD", "POST", "PUT"]);
    expect(state.committed).toBe(desc.digest);
  });
  it("uploads in chunks of at least the registry's OCI-Chunk-Min-Length", async () => {
    const { state, handler } = uploadServer(100_000);
    const repo = await repoOn(handler);
    await repo.uploadBlob(desc, source, { chunkSize: 64_000 });
    expect(state.ranges).toEqual(["0-99999", "100000-199999", "200000-249999"]);
    expect(Buffer.compare(state.received, Buffer.from(blob))).toBe(0);
  });
  it("refuses a source that is not what its descriptor says and cancels the session", async () => {
    const { handler } = uploadServer();
    const repo = await repoOn(handler);
    const wrong = { digest: sha256("something else"), size: blob.length };
    await expect(repo.uploadBlob(wrong, source)).rejects.toMatchObject({ code: "ERR_DIGEST_MISMATCH" });
    // the session is cancelled (the server may log the cut PUT before or after the DELETE)
    await expect.poll(() => server!.seen.map((r) => r.method)).toContain("DELETE");
  });
});
