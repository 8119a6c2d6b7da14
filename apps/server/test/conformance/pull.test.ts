/**
 * Conformance, workflow 1 — Pull (distribution-spec v1.1.1
 * conformance/01_pull_test.go), in our words, against berth and the
 * reference registry. Tests run in order and share state, as the suite's do.
 */
import { afterAll, describe, expect } from "vitest";
import { OCI_MANIFEST, makeFixtures, spec, targets } from "./fixtures.js";

const f = makeFixtures();
const REFERENCE_FAILURES = ["400 response body should contain OCI-conforming JSON message"];
const all = await targets("conformance/pull", REFERENCE_FAILURES);
afterAll(async () => {
  for (const t of all) await t.close();
});

const ok2xx = (s: number) => s >= 200 && s < 300;

for (const t of all) {
  const c = t.client;
  describe(`Pull — ${t.label}`, () => {
    const tag = "tagtest0";

    describe("Setup", () => {
      spec(t, "Populate registry with test blob (config[0])", async () => {
        expect(ok2xx((await c.pushBlob(f.configs[0]!.content, f.configs[0]!.digest)).status)).toBe(true);
      });
      spec(t, "Populate registry with test blob (config[1])", async () => {
        expect(ok2xx((await c.pushBlob(f.configs[1]!.content, f.configs[1]!.digest)).status)).toBe(true);
      });
      spec(t, "Populate registry with test layer", async () => {
        expect(ok2xx((await c.pushBlob(f.layer.content, f.layer.digest)).status)).toBe(true);
      });
      spec(t, "Populate registry with test manifest (manifest[0] by tag)", async () => {
        expect(ok2xx((await c.pushManifest(tag, f.manifests[0]!.content, OCI_MANIFEST)).status)).toBe(true);
      });
      spec(t, "Populate registry with test manifest (manifest[1] by digest)", async () => {
        expect(ok2xx((await c.pushManifest(f.manifests[1]!.digest, f.manifests[1]!.content, OCI_MANIFEST)).status)).toBe(true);
      });
    });

    describe("Pull blobs", () => {
      spec(t, "HEAD request to nonexistent blob should result in 404 response", async () => {
        expect((await c.request("HEAD", `/v2/<name>/blobs/${f.dummyDigest}`)).status).toBe(404);
      });
      spec(t, "HEAD request to existing blob should yield 200", async () => {
        const r = await c.request("HEAD", `/v2/<name>/blobs/${f.configs[0]!.digest}`);
        expect(r.status).toBe(200);
        expect(r.headers.get("docker-content-digest")).toBe(f.configs[0]!.digest);
        expect(r.headers.get("content-length")).toBe(f.configs[0]!.length);
      });
      spec(t, "GET nonexistent blob should result in 404 response", async () => {
        const r = await c.request("GET", `/v2/<name>/blobs/${f.dummyDigest}`);
        expect(r.status).toBe(404);
        expect(r.errorCode()).toBe("BLOB_UNKNOWN");
      });
      spec(t, "GET request to existing blob URL should yield 200", async () => {
        const r = await c.request("GET", `/v2/<name>/blobs/${f.configs[0]!.digest}`);
        expect(r.status).toBe(200);
        expect(r.body.equals(f.configs[0]!.content)).toBe(true);
      });
    });

    describe("Pull manifests", () => {
      spec(t, "HEAD request to nonexistent manifest should return 404", async () => {
        expect((await c.request("HEAD", `/v2/<name>/manifests/${f.nonexistentManifest}`)).status).toBe(404);
      });
      for (const i of [0, 1]) {
        spec(t, `HEAD request to manifest[${i}] path (digest) should yield 200 response`, async () => {
          const r = await c.request("HEAD", `/v2/<name>/manifests/${f.manifests[i]!.digest}`, { headers: { Accept: OCI_MANIFEST } });
          expect(r.status).toBe(200);
          expect(r.headers.get("docker-content-digest")).toBe(f.manifests[i]!.digest);
        });
      }
      spec(t, "HEAD request to manifest path (tag) should yield 200 response", async () => {
        const r = await c.request("HEAD", `/v2/<name>/manifests/${tag}`, { headers: { Accept: OCI_MANIFEST } });
        expect(r.status).toBe(200);
        expect(r.headers.get("docker-content-digest")).toBe(f.manifests[0]!.digest);
        expect(r.headers.get("content-type")).toBe(OCI_MANIFEST);
        expect(r.headers.get("content-length")).toBe(f.manifests[0]!.length);
        expect(r.body.byteLength).toBe(0);
      });
      spec(t, "GET nonexistent manifest should return 404", async () => {
        const r = await c.request("GET", `/v2/<name>/manifests/${f.nonexistentManifest}`);
        expect(r.status).toBe(404);
      });
      for (const i of [0, 1]) {
        spec(t, `GET request to manifest[${i}] path (digest) should yield 200 response`, async () => {
          const r = await c.request("GET", `/v2/<name>/manifests/${f.manifests[i]!.digest}`, { headers: { Accept: OCI_MANIFEST } });
          expect(r.status).toBe(200);
          expect(r.body.equals(f.manifests[i]!.content)).toBe(true);
        });
      }
      spec(t, "GET request to manifest path (tag) should yield 200 response", async () => {
        const r = await c.request("GET", `/v2/<name>/manifests/${tag}`, { headers: { Accept: OCI_MANIFEST } });
        expect(r.status).toBe(200);
        expect(r.body.equals(f.manifests[0]!.content)).toBe(true);
        expect(r.headers.get("docker-content-digest")).toBe(f.manifests[0]!.digest);
      });
    });

    describe("Error codes", () => {
      spec(t, "400 response body should contain OCI-conforming JSON message", async () => {
        const r = await c.request("GET", "/v2/<name>/manifests/sha256:totallywrong", {
          headers: { "Content-Type": OCI_MANIFEST },
        });
        expect([400, 404]).toContain(r.status);
        if (r.status === 400) {
          expect(r.headers.get("content-type")).toBe("application/json");
          expect(["DIGEST_INVALID", "MANIFEST_INVALID", "NAME_INVALID", "UNSUPPORTED"]).toContain(r.errorCode());
        }
      });
    });

    describe("Teardown", () => {
      for (const i of [0, 1]) {
        spec(t, `Delete manifest[${i}] created in setup`, async () => {
          const r = await c.request("DELETE", `/v2/<name>/manifests/${f.manifests[i]!.digest}`);
          expect(ok2xx(r.status) || r.status === 405).toBe(true);
        });
      }
      for (const [what, b] of [
        ["config[0]", f.configs[0]!],
        ["config[1]", f.configs[1]!],
        ["layer", f.layer],
      ] as const) {
        spec(t, `Delete ${what} blob created in setup`, async () => {
          const r = await c.request("DELETE", `/v2/<name>/blobs/${b.digest}`);
          expect(ok2xx(r.status) || r.status === 404 || r.status === 405).toBe(true);
        });
      }
    });
  });
}
