import { gzipSync } from "node:zlib";
import { chainId, hasCode, sha256 } from "@berth/digest";
import { describe, expect, it } from "vitest";
import { openLayerStore } from "../src/index.js";
import { tarFor } from "../src/fixtures.js";
import { tempRoot } from "./helpers.js";

describe("recordLayer from facts (a blob stored by another path, e.g. a worker thread)", () => {
  it("records a layer from a blob already in the content store", async () => {
    const t = await tempRoot();
    try {
      const s = await openLayerStore({ root: t.root });
      const lease = await s.lease();
      const tar = tarFor(1, 4000);
      const gz = gzipSync(tar);
      const base = await s.register([tarFor(2, 1000)]);
      const put = await s.content.put(gz, {}, { lease });
      const facts = (over: Record<string, unknown> = {}) =>
        ({ blob: { mediaType: "", digest: put.digest, size: put.size }, compression: "gzip", diffID: sha256(tar), uncompressedSize: tar.length, contentSize: 4000, ...over }) as never;
      const l = await s.recordLayer(facts(), base.chainID, { lease, holder: "image:x" });
      expect(l).toEqual({
        chainID: chainId([base.diffID, sha256(tar)]),
        diffID: sha256(tar),
        parent: base.chainID,
        size: tar.length,
        contentSize: 4000,
        blob: { digest: sha256(gz), size: gz.length, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" },
        existed: false,
      });
      expect(await s.holders(l.chainID)).toEqual(["image:x"]);
      expect((await s.recordLayer(facts(), base.chainID)).existed).toBe(true);
      expect((await s.fsck()).ok).toBe(true);

      const missing = await s.recordLayer(facts({ blob: { mediaType: "", digest: sha256("absent"), size: 1 }, compression: "none" })).catch((e: unknown) => e);
      expect(hasCode(missing, "ERR_BLOB_NOT_FOUND")).toBe(true);
      const noParent = await s.recordLayer(facts(), sha256("no parent")).catch((e: unknown) => e);
      expect(hasCode(noParent, "ERR_LAYER_NOT_FOUND")).toBe(true);
      const wrongSize = await s.recordLayer(facts({ blob: { mediaType: "", digest: put.digest, size: put.size + 1 } })).catch((e: unknown) => e);
      expect(hasCode(wrongSize, "ERR_SIZE_MISMATCH")).toBe(true);
      const bad = await s.recordLayer(facts({ blob: { mediaType: "", digest: "../x", size: 1 } })).catch((e: unknown) => e);
      expect(hasCode(bad, "ERR_DIGEST_FORMAT")).toBe(true);
      const badContent = await s.recordLayer(facts({ contentSize: -1 }), base.chainID).catch((e: unknown) => e);
      expect(hasCode(badContent, "ERR_INVALID_SIZE")).toBe(true);
      expect((await s.get(l.chainID)).contentSize).toBe(4000);
      expect((await s.list()).length).toBe(2);
    } finally {
      await t.cleanup();
    }
  });
});
