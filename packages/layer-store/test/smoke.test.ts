import { sha256 } from "@berth/digest";
import { describe, expect, it } from "vitest";
import { tarFor } from "../src/fixtures.js";
import { openLayerStore } from "../src/index.js";
import { gz, tempRoot } from "./helpers.js";

describe("smoke", () => {
  it("registers, reads back, dedups, gcs", async () => {
    const t = await tempRoot();
    try {
      const s = await openLayerStore({ root: t.root });
      const tar = tarFor(1, 2048);
      const l = await s.register([gz(tar)]);
      expect(l.diffID).toBe(sha256(tar));
      expect(l.chainID).toBe(l.diffID);
      expect(l.size).toBe(tar.length);
      expect(l.blob.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
      expect(l.existed).toBe(false);
      const again = await s.register([gz(tar)]);
      expect(again.existed).toBe(true);
      const chunks: Buffer[] = [];
      for await (const c of await s.openUncompressed(l.chainID)) chunks.push(c as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(l.diffID);
      await s.acquire(l.chainID, "image:x");
      expect((await s.gc()).removedLayers).toEqual([]);
      await s.release(l.chainID, "image:x");
      const r = await s.gc();
      expect(r.removedLayers).toEqual([l.chainID]);
      expect(r.removedBlobs).toEqual([l.blob.digest]);
    } finally {
      await t.cleanup();
    }
  });
});
