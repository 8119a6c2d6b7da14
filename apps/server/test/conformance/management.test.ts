/**
 * Conformance, workflow 4 — Content Management (distribution-spec v1.1.1
 * conformance/04_management_test.go), in our words, against berth and the
 * reference registry: DELETE of a tag, of a manifest by digest, of blobs,
 * and what GETs and tag lists show afterwards. Tests run in order.
 */
import { afterAll, describe, expect } from "vitest";
import { OCI_MANIFEST, makeFixtures, spec, targets } from "./fixtures.js";

const f = makeFixtures();
// distribution 2.8 cannot delete a tag (DELETE by tag is 404 MANIFEST_UNKNOWN), so the
// manifest stays tagged and the tag list does not change.
const REFERENCE_FAILURES = [
  "DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)",
  "GET request to tags list should reflect manifest deletion",
];
const all = await targets("conformance/management", REFERENCE_FAILURES);
afterAll(async () => {
  for (const t of all) await t.close();
});

const ok2xx = (s: number) => s >= 200 && s < 300;

for (const t of all) {
  const c = t.client;
  describe(`Content Management — ${t.label}`, () => {
    const tagToDelete = "tagtest0";
    let numTags = 0;
    let blobDeleteAllowed = true;
    const tagsOf = (body: Buffer) => (JSON.parse(body.toString("utf8")) as { tags: string[] }).tags;

    describe("Setup", () => {
      spec(t, "Populate registry with test config blob", async () => {
        expect(ok2xx((await c.pushBlob(f.configs[3]!.content, f.configs[3]!.digest)).status)).toBe(true);
      });
      spec(t, "Populate registry with test layer", async () => {
        expect(ok2xx((await c.pushBlob(f.layer.content, f.layer.digest)).status)).toBe(true);
      });
      spec(t, "Populate registry with test tag", async () => {
        expect(ok2xx((await c.pushManifest(tagToDelete, f.manifests[3]!.content, OCI_MANIFEST)).status)).toBe(true);
      });
      spec(t, "Check how many tags there are before anything gets deleted", async () => {
        const r = await c.request("GET", "/v2/<name>/tags/list");
        expect(r.status).toBe(200);
        numTags = tagsOf(r.body).length;
      });
    });

    describe("Manifest delete", () => {
      spec(t, "DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)", async () => {
        const r = await c.request("DELETE", `/v2/<name>/manifests/${tagToDelete}`);
        expect([400, 202, 405]).toContain(r.status);
        if (r.status === 400) expect(r.errorCode()).toBe("UNSUPPORTED");
        if (t.berth) {
          expect(r.status).toBe(202);
          // The tag is gone; the manifest is still there by digest.
          expect((await c.request("GET", `/v2/<name>/manifests/${tagToDelete}`)).status).toBe(404);
          expect((await c.request("HEAD", `/v2/<name>/manifests/${f.manifests[3]!.digest}`)).status).toBe(200);
        }
      });
      spec(t, "DELETE request to manifest (digest) should yield 202 response unless already deleted", async () => {
        const r = await c.request("DELETE", `/v2/<name>/manifests/${f.manifests[3]!.digest}`);
        expect([202, 404]).toContain(r.status);
      });
      spec(t, "GET request to deleted manifest URL should yield 404 response, unless delete is disallowed", async () => {
        const r = await c.request("GET", `/v2/<name>/manifests/${f.manifests[3]!.digest}`);
        expect([404, 200]).toContain(r.status);
        if (t.berth) expect(r.status).toBe(404);
      });
      spec(t, "GET request to tags list should reflect manifest deletion", async () => {
        const r = await c.request("GET", "/v2/<name>/tags/list");
        expect([404, 200]).toContain(r.status);
        if (r.status === 200) expect(tagsOf(r.body).length).toBe(numTags - 1);
        else expect(numTags - 1).toBe(0);
      });
    });

    describe("Blob delete", () => {
      spec(t, "DELETE request to blob URL should yield 202 response", async () => {
        const config = await c.request("DELETE", `/v2/<name>/blobs/${f.configs[3]!.digest}`);
        expect([202, 404, 405]).toContain(config.status);
        const layer = await c.request("DELETE", `/v2/<name>/blobs/${f.layer.digest}`);
        expect([202, 404, 405]).toContain(layer.status);
        if (layer.status === 405) blobDeleteAllowed = false;
        if (t.berth) expect([config.status, layer.status]).toEqual([202, 202]);
      });
      spec(t, "GET request to deleted blob URL should yield 404 response", async (ctx) => {
        if (!blobDeleteAllowed) return ctx.skip();
        expect((await c.request("GET", `/v2/<name>/blobs/${f.configs[3]!.digest}`)).status).toBe(404);
      });
    });
  });
}
