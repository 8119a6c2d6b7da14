/**
 * The registry's HTTP layer beyond the conformance suite: path validation
 * (never a 500 for bad input), Range requests, content negotiation, streamed
 * and monolithic uploads with their errors, mounts, limits (manifest size,
 * concurrent uploads), pagination with Link, and what the log line records.
 */
import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parseRoute } from "../src/registry/route.js";
import { RegistryClient, startBerth } from "./helpers.js";
import type { MemoryBackend } from "./memory-backend.js";

const sha = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

let berth: Awaited<ReturnType<typeof startBerth>>;
let c: RegistryClient;
let backend: MemoryBackend;
beforeAll(async () => {
  berth = await startBerth({ limits: { maxManifestSize: 64 * 1024, maxConcurrentUploads: 2, maxPageSize: 3 } });
  c = new RegistryClient(berth.server.url, "team/app");
  backend = berth.backend;
});
afterAll(() => berth.server.close());

/** GET a path exactly as written (fetch would normalise dot segments). */
function rawGet(path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(berth.server.url), { path, method: "GET" }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (b: Buffer) => chunks.push(b));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Push a config + layer + manifest; returns the manifest's digest and bytes. */
async function pushImage(name: string, tag: string, mediaType = OCI_MANIFEST) {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, n: randomBytes(4).toString("hex") }));
  const layer = randomBytes(3000);
  expect((await c.pushBlob(config, sha(config), name)).status).toBe(201);
  expect((await c.pushBlob(layer, sha(layer), name)).status).toBe(201);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.byteLength },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(layer), size: layer.byteLength }],
    }),
  );
  const r = await c.pushManifest(tag, manifest, mediaType, name);
  expect(r.status).toBe(201);
  return { digest: sha(manifest), manifest, layer, config };
}

describe("paths", () => {
  it("parses every route into typed values", () => {
    const d = sha("x");
    expect(parseRoute("GET", "/v2/")).toEqual({ kind: "base" });
    expect(parseRoute("GET", "/v2/_catalog")).toEqual({ kind: "catalog" });
    expect(parseRoute("GET", "/v2/a/b/c/manifests/v1.0")).toEqual({ kind: "manifest", name: "a/b/c", ref: { tag: "v1.0" } });
    expect(parseRoute("GET", `/v2/a/manifests/${d}`)).toEqual({ kind: "manifest", name: "a", ref: { digest: d } });
    expect(parseRoute("GET", `/v2/a/blobs/${d}`)).toEqual({ kind: "blob", name: "a", digest: d });
    expect(parseRoute("GET", `/v2/a/blobs/${d.replace(":", "%3A")}`)).toEqual({ kind: "blob", name: "a", digest: d });
    expect(parseRoute("POST", "/v2/a/blobs/uploads/")).toEqual({ kind: "uploads", name: "a" });
    expect(parseRoute("PATCH", "/v2/a/blobs/uploads/abc-123")).toEqual({ kind: "upload", name: "a", id: "abc-123" });
    expect(parseRoute("GET", "/v2/a/tags/list")).toEqual({ kind: "tags", name: "a" });
    expect(parseRoute("GET", `/v2/a/referrers/${d}`)).toEqual({ kind: "referrers", name: "a", digest: d });
    // A repository may be named like an endpoint's words.
    expect(parseRoute("GET", "/v2/blobs/manifests/tags/list")).toEqual({ kind: "tags", name: "blobs/manifests" });
  });

  it.each([
    ["/v2/UPPER/tags/list", 400, "NAME_INVALID"],
    ["/v2/a//b/tags/list", 400, "NAME_INVALID"],
    ["/v2/../etc/tags/list", 400, "NAME_INVALID"],
    ["/v2/a/%2e%2e/tags/list", 400, "NAME_INVALID"],
    ["/v2/a%2Fb/tags/list", 404, "UNSUPPORTED"],
    [`/v2/${"a".repeat(256)}/tags/list`, 400, "NAME_INVALID"],
    ["/v2/a/blobs/sha256:zz", 400, "DIGEST_INVALID"],
    ["/v2/a/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", 400, "DIGEST_INVALID"],
    ["/v2/a/blobs/%ZZ", 404, "UNSUPPORTED"],
    ["/v2/a/referrers/nope", 400, "DIGEST_INVALID"],
    ["/v2/a/manifests/sha256:totallywrong", 400, "DIGEST_INVALID"],
    ["/v2/a/manifests/-bad-tag", 404, "MANIFEST_UNKNOWN"],
    ["/v2/a/blobs/uploads/..%2f..", 404, "UNSUPPORTED"],
    ["/v2/a/blobs/uploads/a$b", 404, "BLOB_UPLOAD_UNKNOWN"],
    ["/v2/a/nothing/here", 404, "UNSUPPORTED"],
  ])("GET %s → %i %s, JSON, no stack trace", async (path, status, code) => {
    const r = await rawGet(path);
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body).errors[0].code).toBe(code);
    expect(r.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect(r.body).not.toMatch(/at .*\.ts:\d+/);
  });

  it("keeps the connection open after an error to a bodyless request; closes it when a body was left unread", async () => {
    const miss = await c.request("GET", `/v2/<name>/blobs/${sha("absent")}`);
    expect([miss.status, miss.headers.get("connection")]).toEqual([404, "keep-alive"]);
    const unread = await c.request("PATCH", "/v2/<name>/blobs/uploads/no-such-session", { body: "x".repeat(1000) });
    expect([unread.status, unread.headers.get("connection")]).toEqual([404, "close"]);
  });

  it("answers 405 with Allow for a method a route does not take", async () => {
    const r = await c.request("PUT", "/v2/team/app/tags/list");
    expect(r.status).toBe(405);
    expect(r.headers.get("allow")).toBe("GET, HEAD");
    expect(r.errorCode()).toBe("UNSUPPORTED");
  });

  it("refuses a PUT to an invalid tag with MANIFEST_INVALID", async () => {
    const r = await c.pushManifest("-bad", "{}", OCI_MANIFEST);
    expect(r.status).toBe(400);
    expect(r.errorCode()).toBe("MANIFEST_INVALID");
  });
});

describe("blobs", () => {
  it("serves ranges (206, Content-Range), ETag, If-None-Match and 416 past the end", async () => {
    const { layer } = await pushImage("team/app", "ranges");
    const d = sha(layer);
    const full = await c.request("GET", `/v2/<name>/blobs/${d}`);
    expect(full.status).toBe(200);
    expect(full.headers.get("accept-ranges")).toBe("bytes");
    expect(full.headers.get("etag")).toBe(`"${d}"`);
    expect(full.body.equals(layer)).toBe(true);
    const part = await c.request("GET", `/v2/<name>/blobs/${d}`, { headers: { Range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${layer.byteLength}`);
    expect(part.body.equals(layer.subarray(100, 200))).toBe(true);
    const open = await c.request("GET", `/v2/<name>/blobs/${d}`, { headers: { Range: "bytes=2990-" } });
    expect(open.body.equals(layer.subarray(2990))).toBe(true);
    const suffix = await c.request("GET", `/v2/<name>/blobs/${d}`, { headers: { Range: "bytes=-10" } });
    expect(suffix.body.equals(layer.subarray(layer.byteLength - 10))).toBe(true);
    const past = await c.request("GET", `/v2/<name>/blobs/${d}`, { headers: { Range: "bytes=5000-" } });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe(`bytes */${layer.byteLength}`);
    const cached = await c.request("GET", `/v2/<name>/blobs/${d}`, { headers: { "If-None-Match": `"${d}"` } });
    expect(cached.status).toBe(304);
    const stale = await c.request("GET", `/v2/<name>/blobs/${d}`, { headers: { Range: "bytes=0-9", "If-Range": '"sha256:other"' } });
    expect(stale.status).toBe(200);
  });

  it("streams a blob larger than the read size, byte for byte", async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17);
    expect((await c.pushBlob(big, sha(big))).status).toBe(201);
    const r = await c.request("GET", `/v2/<name>/blobs/${sha(big)}`);
    expect(r.body.equals(big)).toBe(true);
  });

  it("refuses DELETE when deletes are disabled", async () => {
    const off = await startBerth({ registry: { backend, deleteEnabled: false } });
    try {
      const r = await new RegistryClient(off.server.url, "team/app").request("DELETE", `/v2/<name>/blobs/${sha("x")}`);
      expect(r.status).toBe(405);
      expect(r.errorCode()).toBe("UNSUPPORTED");
    } finally {
      await off.server.close();
    }
  });
});

describe("uploads", () => {
  it("a streamed PATCH without Content-Range, then PUT: Location, Range and Docker-Upload-UUID at each step", async () => {
    const data = randomBytes(100_000);
    const post = await c.request("POST", "/v2/<name>/blobs/uploads/");
    expect(post.status).toBe(202);
    expect(post.headers.get("range")).toBe("0-0");
    const id = post.headers.get("docker-upload-uuid")!;
    expect(post.location()).toBe(`/v2/team/app/blobs/uploads/${id}`);
    const patch = await c.request("PATCH", post.location(), { body: data });
    expect(patch.status).toBe(202);
    expect(patch.headers.get("range")).toBe(`0-${data.byteLength - 1}`);
    const put = await c.request("PUT", patch.location(), { query: { digest: sha(data) } });
    expect(put.status).toBe(201);
    expect(put.headers.get("docker-content-digest")).toBe(sha(data));
    expect((await c.request("GET", patch.location())).errorCode()).toBe("BLOB_UPLOAD_UNKNOWN");
  });

  it("a wrong digest at PUT is DIGEST_INVALID and leaves no blob", async () => {
    const data = Buffer.from("some bytes");
    const post = await c.request("POST", "/v2/<name>/blobs/uploads/");
    const wrong = sha("other bytes");
    const r = await c.request("PUT", post.location(), { query: { digest: wrong }, body: data });
    expect(r.status).toBe(400);
    expect(r.errorCode()).toBe("DIGEST_INVALID");
    expect((await c.request("HEAD", `/v2/<name>/blobs/${wrong}`)).status).toBe(404);
    expect((await c.request("HEAD", `/v2/<name>/blobs/${sha(data)}`)).status).toBe(404);
  });

  it("monolithic POST ?digest= with a malformed digest creates no session", async () => {
    const before = backend.uploads.size;
    const r = await c.request("POST", "/v2/<name>/blobs/uploads/", { query: { digest: "sha256:nope" }, body: "b" });
    expect([r.status, r.errorCode()]).toEqual([400, "DIGEST_INVALID"]);
    expect(backend.uploads.size).toBe(before);
  });

  it("monolithic POST ?digest= with a wrong digest is DIGEST_INVALID; PUT without digest too", async () => {
    const r = await c.request("POST", "/v2/<name>/blobs/uploads/", { query: { digest: sha("a") }, body: "b" });
    expect(r.status).toBe(400);
    expect(r.errorCode()).toBe("DIGEST_INVALID");
    const post = await c.request("POST", "/v2/<name>/blobs/uploads/");
    const put = await c.request("PUT", post.location(), { body: "b" });
    expect(put.status).toBe(400);
    expect(put.errorCode()).toBe("DIGEST_INVALID");
  });

  it("a chunk whose Content-Range disagrees with its length is SIZE_INVALID; a malformed one 416", async () => {
    const post = await c.request("POST", "/v2/<name>/blobs/uploads/");
    const r = await c.request("PATCH", post.location(), { headers: { "Content-Range": "0-9" }, body: "12345" });
    expect(r.status).toBe(400);
    expect(r.errorCode()).toBe("SIZE_INVALID");
    const bad = await c.request("PATCH", post.location(), { headers: { "Content-Range": "nine-ten" }, body: "12345" });
    expect(bad.status).toBe(416);
  });

  it("an upload session is bound to its repository, and can be cancelled", async () => {
    const post = await c.request("POST", "/v2/<name>/blobs/uploads/");
    const id = post.headers.get("docker-upload-uuid")!;
    const elsewhere = await c.request("GET", `/v2/other/blobs/uploads/${id}`);
    expect(elsewhere.status).toBe(404);
    expect(elsewhere.errorCode()).toBe("BLOB_UPLOAD_UNKNOWN");
    expect((await c.request("DELETE", post.location())).status).toBe(204);
    expect((await c.request("GET", post.location())).status).toBe(404);
  });

  it("mount with an invalid from is NAME_INVALID, and creates no session", async () => {
    const before = backend.uploads.size;
    const r = await c.request("POST", "/v2/<name>/blobs/uploads/", { query: { mount: sha("x"), from: "Not/Valid" } });
    expect(r.status).toBe(400);
    expect(r.errorCode()).toBe("NAME_INVALID");
    expect(backend.uploads.size).toBe(before);
  });

  it("over the concurrent upload limit: 429 TOOMANYREQUESTS with Retry-After", async () => {
    // Two uploads that stall mid-body hold both slots.
    const stalled = await Promise.all(
      [0, 1].map(async () => {
        const post = await c.request("POST", "/v2/<name>/blobs/uploads/");
        const url = new URL(post.location(), berth.server.url);
        const req = httpRequest(url, { method: "PATCH", headers: { "Content-Length": "100" } });
        req.on("error", () => {});
        req.write("x".repeat(10));
        const id = post.location().split("/").pop()!;
        await vi.waitFor(() => expect(backend.uploads.get(id)?.offset).toBe(10), { timeout: 10_000 });
        return req;
      }),
    );
    const post = await c.request("POST", "/v2/<name>/blobs/uploads/");
    const r = await c.request("PATCH", post.location(), { body: "abc" });
    expect(r.status).toBe(429);
    expect(r.errorCode()).toBe("TOOMANYREQUESTS");
    expect(r.headers.get("retry-after")).toBe("1");
    for (const req of stalled) req.destroy();
  });
});

describe("a store that fails to write", () => {
  /** A PATCH of `size` bytes written in 64 KiB pieces by node:http; resolves with the answer, or the client's error. */
  const patch = (path: string, size: number) =>
    new Promise<{ status: number; body: string } | { error: string }>((resolve) => {
      const req = httpRequest(new URL(berth.server.url), { path, method: "PATCH", headers: { "content-type": "application/octet-stream", "content-length": size } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (b: Buffer) => chunks.push(b));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on("error", (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
      const piece = randomBytes(64 * 1024);
      let left = size;
      const write = () => {
        while (left > 0) {
          const n = Math.min(left, piece.length);
          left -= n;
          if (!req.write(piece.subarray(0, n))) return void req.once("drain", write);
        }
        req.end();
      };
      write();
    });

  it("a full disk mid-upload: 507 with the file system's word, read by a client still writing its body (not a broken pipe)", async () => {
    const post = await c.request("POST", "/v2/<name>/blobs/uploads/");
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28, syscall: "write" });
    const spy = vi.spyOn(backend, "appendUpload").mockImplementationOnce(async (_repo, _id, chunk) => {
      for await (const _ of chunk.body) throw full; // the first piece arrives, the disk is full
      throw full;
    });
    try {
      const r = await patch(post.location(), 48 << 20);
      expect(r).toMatchObject({ status: 507 });
      const body = JSON.parse((r as { body: string }).body);
      expect(body.errors[0]).toMatchObject({ code: "UNKNOWN", message: "insufficient storage: no space left on device" });
    } finally {
      spy.mockRestore();
    }
  });
});

describe("manifests", () => {
  it("serves by tag only what Accept lists; by digest always; HEAD has the headers docker needs", async () => {
    const { digest, manifest } = await pushImage("team/app", "neg", DOCKER_MANIFEST);
    const accepts = [OCI_MANIFEST, DOCKER_MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json"].join(", ");
    const head = await c.request("HEAD", "/v2/<name>/manifests/neg", { headers: { Accept: accepts } });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe(DOCKER_MANIFEST);
    expect(head.headers.get("content-length")).toBe(String(manifest.byteLength));
    expect(head.headers.get("docker-content-digest")).toBe(digest);
    const ociOnly = await c.request("GET", "/v2/<name>/manifests/neg", { headers: { Accept: OCI_MANIFEST } });
    expect(ociOnly.status).toBe(404);
    expect(ociOnly.errorCode()).toBe("MANIFEST_UNKNOWN");
    expect((await c.request("GET", "/v2/<name>/manifests/neg", { headers: { Accept: "*/*" } })).status).toBe(200);
    expect((await c.request("GET", "/v2/<name>/manifests/neg")).status).toBe(200);
    const byDigest = await c.request("GET", `/v2/<name>/manifests/${digest}`, { headers: { Accept: OCI_MANIFEST } });
    expect(byDigest.status).toBe(200);
    expect(byDigest.body.equals(manifest)).toBe(true);
  });

  it("refuses a manifest over the size limit with 413, before reading it", async () => {
    const r = await c.pushManifest("big", Buffer.alloc(64 * 1024 + 1, 0x20), OCI_MANIFEST);
    expect(r.status).toBe(413);
    expect(r.errorCode()).toBe("SIZE_INVALID");
  });

  it("answers backend refusals with the spec's codes", async () => {
    const missing = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "x/y", digest: sha("nope"), size: 4 }, layers: [] }),
    );
    const r1 = await c.pushManifest("t", missing, OCI_MANIFEST);
    expect([r1.status, r1.errorCode()]).toEqual([400, "MANIFEST_BLOB_UNKNOWN"]);
    const r2 = await c.pushManifest("t", "not json", OCI_MANIFEST);
    expect([r2.status, r2.errorCode()]).toEqual([400, "MANIFEST_INVALID"]);
    const r3 = await c.pushManifest(sha("something else"), "{}", OCI_MANIFEST);
    expect([r3.status, r3.errorCode()]).toEqual([400, "MANIFEST_INVALID"]);
    const r4 = await c.request("DELETE", "/v2/nosuchrepo/manifests/latest");
    expect([r4.status, r4.errorCode()]).toEqual([404, "NAME_UNKNOWN"]);
  });
});

describe("lists", () => {
  it("tags: n capped at the page size with Link; bad n is 400; n=0 is empty without Link", async () => {
    for (const tag of ["b", "A", "c", "a", "d"]) await pushImage("list/tags", tag);
    const all = await c.request("GET", "/v2/list/tags/tags/list");
    expect(all.json<{ tags: string[] }>().tags).toEqual(["A", "a", "b", "c", "d"]);
    const first = await c.request("GET", "/v2/list/tags/tags/list", { query: { n: "100" } });
    expect(first.json<{ tags: string[] }>().tags).toEqual(["A", "a", "b"]);
    expect(first.headers.get("link")).toBe('</v2/list/tags/tags/list?n=3&last=b>; rel="next"');
    const next = await c.request("GET", "/v2/list/tags/tags/list?n=3&last=b");
    expect(next.json<{ tags: string[] }>().tags).toEqual(["c", "d"]);
    expect(next.headers.get("link")).toBeNull();
    const zero = await c.request("GET", "/v2/list/tags/tags/list", { query: { n: "0" } });
    expect([zero.status, zero.json<{ tags: string[] }>().tags, zero.headers.get("link")]).toEqual([200, [], null]);
    const bad = await c.request("GET", "/v2/list/tags/tags/list", { query: { n: "-1" } });
    expect([bad.status, bad.errorCode()]).toEqual([400, "PAGINATION_NUMBER_INVALID"]);
    const unknown = await c.request("GET", "/v2/no/such/tags/list");
    expect([unknown.status, unknown.errorCode()]).toEqual([404, "NAME_UNKNOWN"]);
  });

  it("catalog: sorted, paged with Link", async () => {
    await pushImage("catalog/x", "1");
    const r = await c.request("GET", "/v2/_catalog", { query: { n: "2" } });
    const repos = r.json<{ repositories: string[] }>().repositories;
    expect(repos.length).toBe(2);
    expect(repos).toEqual([...repos].sort());
    expect(r.headers.get("link")).toMatch(/^<\/v2\/_catalog\?n=2&last=[^>]+>; rel="next"$/);
  });
});

describe("log", () => {
  it("writes one entry per request with status, face, bytes and the error code", async () => {
    const before = berth.log.length;
    await c.request("GET", "/v2/team/app/blobs/sha256:zz");
    await vi.waitFor(() => expect(berth.log.length).toBeGreaterThan(before));
    const e = berth.log[before]!;
    expect(e).toMatchObject({ method: "GET", path: "/v2/team/app/blobs/sha256:zz", status: 400, face: "registry", error: "DIGEST_INVALID" });
    expect(e.bytes).toBeGreaterThan(0);
    expect(berth.log.length).toBe(before + 1);
  });
});
