/**
 * Conformance, workflow 3 — Content Discovery (distribution-spec v1.1.1
 * conformance/03_discovery_test.go), in our words, against berth and the
 * reference registry: tag lists (sorted, `n`, `last`), manifests with a
 * `subject` (`OCI-Subject`), and the referrers API (`artifactType` filter,
 * `OCI-Filters-Applied`, a subject never pushed). Tests run in order.
 */
import { afterAll, describe, expect } from "vitest";
import { compareTags } from "../../src/registry/backend.js";
import { OCI_INDEX, OCI_MANIFEST, makeFixtures, spec, targets } from "./fixtures.js";

const f = makeFixtures();
// distribution 2.8 ignores `subject` (no OCI-Subject), has no referrers API (404), and no
// tag pagination (`n` is ignored); beyond the suite, its tag list is not sorted.
const REFERENCE_FAILURES = [
  "(beyond the suite) tags are listed in lexical order",
  "References setup",
  "GET number of tags should be limitable by `n` query parameter",
  "GET start of tag is set by `last` query parameter",
  "GET request to nonexistent blob should result in empty 200 response",
  "GET request to existing blob should yield 200",
  "GET request to existing blob with filter should yield 200",
  "GET request to missing manifest should yield 200",
];
const all = await targets("conformance/discovery", REFERENCE_FAILURES);
afterAll(async () => {
  for (const t of all) await t.close();
});

const ok2xx = (s: number) => s >= 200 && s < 300;

interface Index {
  schemaVersion: number;
  mediaType: string;
  manifests: { digest: string; mediaType: string; artifactType?: string; annotations?: Record<string, string> }[];
}

for (const t of all) {
  const c = t.client;
  describe(`Content Discovery — ${t.label}`, () => {
    let numTags = 4;
    let tagList: string[] = [];
    const tagsOf = (body: Buffer): string[] => {
      try {
        return (JSON.parse(body.toString("utf8")) as { tags?: string[] }).tags ?? [];
      } catch {
        return [];
      }
    };

    describe("Setup", () => {
      spec(t, "Populate registry with test blob", async () => {
        expect(ok2xx((await c.pushBlob(f.configs[2]!.content, f.configs[2]!.digest)).status)).toBe(true);
      });
      spec(t, "Populate registry with test layer", async () => {
        expect(ok2xx((await c.pushBlob(f.layer.content, f.layer.digest)).status)).toBe(true);
      });
      spec(t, "Populate registry with test tags", async () => {
        for (let i = 0; i < numTags; i++) {
          expect(ok2xx((await c.pushManifest(`test${i}`, f.manifests[2]!.content, OCI_MANIFEST)).status)).toBe(true);
        }
        tagList = tagsOf((await c.request("GET", "/v2/<name>/tags/list")).body);
      });
      spec(t, "References setup", async () => {
        expect(f.emptyJson.digest).toBe("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        expect(ok2xx((await c.pushBlob(f.emptyJson.content, f.emptyJson.digest)).status)).toBe(true);
        // a referrer's blob, before the subject is pushed
        expect(ok2xx((await c.pushBlob(f.refBlobA.content, f.refBlobA.digest)).status)).toBe(true);
        const subject = f.manifests[4]!.digest;
        for (const [m, type] of [
          [f.refsAConfig, OCI_MANIFEST],
          [f.refsALayer, OCI_MANIFEST],
          [f.refsIndex, OCI_INDEX],
        ] as const) {
          const r = await c.pushManifest(m.digest, m.content, type);
          expect(ok2xx(r.status)).toBe(true);
          expect(r.headers.get("oci-subject")).toBe(subject);
        }
        // the subject itself
        expect(ok2xx((await c.pushBlob(f.configs[4]!.content, f.configs[4]!.digest)).status)).toBe(true);
        expect(ok2xx((await c.pushBlob(f.layer.content, f.layer.digest)).status)).toBe(true);
        expect(ok2xx((await c.pushManifest("tagtest0", f.manifests[4]!.content, OCI_MANIFEST)).status)).toBe(true);
        // referrers after the subject
        expect(ok2xx((await c.pushBlob(f.refBlobB.content, f.refBlobB.digest)).status)).toBe(true);
        for (const m of [f.refsBConfig, f.refsBLayer]) {
          const r = await c.pushManifest(m.digest, m.content, OCI_MANIFEST);
          expect(ok2xx(r.status)).toBe(true);
          expect(r.headers.get("oci-subject")).toBe(subject);
        }
        // a referrer of a subject that is never pushed
        const r = await c.pushManifest(f.refsCLayer.digest, f.refsCLayer.content, OCI_MANIFEST);
        expect(ok2xx(r.status)).toBe(true);
        expect(r.headers.get("oci-subject")).toBe(f.manifests[3]!.digest);
      });
    });

    describe("Test content discovery endpoints (listing tags)", () => {
      spec(t, "GET request to list tags should yield 200 response", async () => {
        const r = await c.request("GET", "/v2/<name>/tags/list");
        expect(r.status).toBe(200);
        tagList = tagsOf(r.body);
        numTags = tagList.length;
        expect(r.json<{ name: string }>().name).toBe(c.name);
      });
      spec(t, "(beyond the suite) tags are listed in lexical order", async () => {
        expect(tagList.length).toBeGreaterThan(1);
        expect(tagList).toEqual([...tagList].sort(compareTags));
      });
      spec(t, "GET number of tags should be limitable by `n` query parameter", async () => {
        const n = Math.floor(numTags / 2);
        const r = await c.request("GET", "/v2/<name>/tags/list", { query: { n: String(n) } });
        expect(r.status).toBe(200);
        expect(tagsOf(r.body).length).toBe(n);
      });
      spec(t, "GET start of tag is set by `last` query parameter", async () => {
        const n = Math.floor(numTags / 2);
        const first = tagsOf((await c.request("GET", "/v2/<name>/tags/list", { query: { n: String(n) } })).body);
        const r = await c.request("GET", "/v2/<name>/tags/list", { query: { n: String(n), last: first[n - 1]! } });
        expect(r.status).toBe(200);
        const next = tagsOf(r.body);
        expect(next.length).toBeLessThanOrEqual(n);
        // The suite checks its own first page here; we check the second page is the rest, in order.
        expect([...first, ...next]).toEqual(tagList.slice(0, first.length + next.length));
        expect(next).not.toContain(first[n - 1]);
      });
    });

    describe("Test content discovery endpoints (listing references)", () => {
      const getIndex = async (digest: string, query?: Record<string, string>) => {
        const r = await c.request("GET", `/v2/<name>/referrers/${digest}`, query ? { query } : {});
        expect(r.status).toBe(200);
        expect(r.headers.get("content-type")).toBe(OCI_INDEX);
        return { r, index: r.json<Index>() };
      };
      spec(t, "GET request to nonexistent blob should result in empty 200 response", async () => {
        const { index } = await getIndex(f.dummyDigest);
        expect(index.manifests.length).toBe(0);
      });
      spec(t, "GET request to existing blob should yield 200", async () => {
        const { index } = await getIndex(f.manifests[4]!.digest);
        expect(index.manifests.length).toBe(5);
        expect(index.manifests[0]!.digest).not.toBe(index.manifests[1]!.digest);
        for (const m of index.manifests) {
          expect(Object.keys(m.annotations ?? {}).length).toBe(1);
          expect(m.annotations![f.annotationKey]).toBe(f.annotations.get(m.digest));
        }
        // artifactType: the manifest's own, else its config's media type; the index's own.
        const types = Object.fromEntries(index.manifests.map((m) => [m.digest, m.artifactType]));
        expect(types[f.refsAConfig.digest]).toBe(f.artifactTypeA);
        expect(types[f.refsALayer.digest]).toBe(f.artifactTypeA);
        expect(types[f.refsBConfig.digest]).toBe(f.artifactTypeB);
        expect(types[f.refsIndex.digest]).toBe("application/vnd.food.stand");
      });
      spec(t, "GET request to existing blob with filter should yield 200", async () => {
        const { r, index } = await getIndex(f.manifests[4]!.digest, { artifactType: f.artifactTypeA });
        const applied = r.headers.get("oci-filters-applied");
        if (t.berth) expect(applied).toBe("artifactType");
        if (applied) {
          expect(index.manifests.length).toBe(2);
          expect(applied).toBe("artifactType");
        } else {
          expect(index.manifests.length).toBe(5);
        }
        for (const m of index.manifests) expect(m.annotations![f.annotationKey]).toBe(f.annotations.get(m.digest));
      });
      spec(t, "GET request to missing manifest should yield 200", async () => {
        const { index } = await getIndex(f.manifests[3]!.digest);
        expect(index.manifests.length).toBe(1);
        expect(index.manifests[0]!.digest).toBe(f.refsCLayer.digest);
      });
    });

    describe("Teardown", () => {
      const deleted = (s: number) => ok2xx(s) || s === 404 || s === 405;
      spec(t, "Delete created manifest & associated tags", async () => {
        for (const d of [f.refsIndex, f.manifests[2]!, f.manifests[4]!, f.refsAConfig, f.refsALayer, f.refsBConfig, f.refsBLayer, f.refsCLayer]) {
          expect(deleted((await c.request("DELETE", `/v2/<name>/manifests/${d.digest}`)).status)).toBe(true);
        }
      });
      spec(t, "Delete config blob created in tests", async () => {
        expect(deleted((await c.request("DELETE", `/v2/<name>/blobs/${f.configs[2]!.digest}`)).status)).toBe(true);
      });
      spec(t, "Delete layer blob created in setup", async () => {
        expect(deleted((await c.request("DELETE", `/v2/<name>/blobs/${f.layer.digest}`)).status)).toBe(true);
      });
      spec(t, "References teardown", async () => {
        for (const b of [f.configs[4]!, f.refBlobA, f.refBlobB, f.emptyJson]) {
          expect(deleted((await c.request("DELETE", `/v2/<name>/blobs/${b.digest}`)).status)).toBe(true);
        }
      });
    });
  });
}
