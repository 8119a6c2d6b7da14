import { gzipSync } from "node:zlib";
import { chainId, hasCode, sha256 } from "@berth/digest";
import { describe, expect, it } from "vitest";
import { openLayerStore } from "../src/index.js";
import { tarFor } from "../src/fixtures.js";
import { tempRoot } from "./helpers.js";

describe("registerStoredBlob", () => {
  it("records a layer from a blob already in the content store", async () => {
    const t = await tempRoot();
    try {
      const s = await openLayerStore({ root: t.root });
      const lease = await s.lease();
      const tar = tarFor(1, 4000);
      const gz = gzipSync(tar);
      const base = await s.register([tarFor(2, 1000)]);
      const put = await s.content.put(gz, {}, { lease });
      const l = await s.registerStoredBlob(
        { digest: put.digest, size: put.size, compression: "gzip" },
        sha256(tar),
        tar.length,
        base.chainID,
        { lease, holder: "image:x", contentSize: 4000 },
      );
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
      expect((await s.registerStoredBlob({ digest: put.digest, size: put.size, compression: "gzip" }, sha256(tar), tar.length, base.chainID)).existed).toBe(true);
      expect((await s.fsck()).ok).toBe(true);

      const missing = await s
        .registerStoredBlob({ digest: sha256("absent"), size: 1, compression: "none" }, sha256("absent"), 1)
        .catch((e: unknown) => e);
      expect(hasCode(missing, "ERR_BLOB_NOT_FOUND")).toBe(true);
      const noParent = await s
        .registerStoredBlob({ digest: put.digest, size: put.size, compression: "gzip" }, sha256(tar), tar.length, sha256("no parent"))
        .catch((e: unknown) => e);
      expect(hasCode(noParent, "ERR_LAYER_NOT_FOUND")).toBe(true);
      const wrongSize = await s
        .registerStoredBlob({ digest: put.digest, size: put.size + 1, compression: "gzip" }, sha256(tar), tar.length)
        .catch((e: unknown) => e);
      expect(hasCode(wrongSize, "ERR_SIZE_MISMATCH")).toBe(true);
      const bad = await s.registerStoredBlob({ digest: "../x", size: 1, compression: "none" }, sha256(tar), 1).catch((e: unknown) => e);
      expect(hasCode(bad, "ERR_DIGEST_FORMAT")).toBe(true);
      const badContent = await s
        .registerStoredBlob({ digest: put.digest, size: put.size, compression: "gzip" }, sha256(tar), tar.length, base.chainID, { contentSize: -1 })
        .catch((e: unknown) => e);
      expect(hasCode(badContent, "ERR_INVALID_SIZE")).toBe(true);
      expect((await s.get(l.chainID)).contentSize).toBe(4000);
      expect((await s.list()).length).toBe(2);
    } finally {
      await t.cleanup();
    }
  });
});
