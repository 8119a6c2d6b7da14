// Layers made by the real tools (GNU tar, gzip, zstd from Debian): registered
// as tar, tar+gzip and tar+zstd they are one layer with the DiffID that
// sha256sum gives the tar, and openUncompressed returns the tar byte for byte.
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { requirePeer } from "@berth/peers";
import { sha256 } from "@berth/digest";
import { describe, expect, it } from "vitest";
import { openLayerStore } from "../src/index.js";
import { randomBytesFor } from "../src/fixtures.js";
import { tempRoot } from "./helpers.js";

const run = promisify(execFile);

async function readAll(r: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

describe("layers from the real tar, gzip and zstd", () => {
  it("tar, tar+gzip and tar+zstd of one tree are one layer", async () => {
    const tar = await requirePeer("tar");
    const zstd = await requirePeer("zstd");
    if (!tar || !zstd) return; // not installed and not required (BERTH_REQUIRE_PEERS unset)
    const t = await tempRoot();
    try {
      const tree = path.join(t.root, "tree");
      await mkdir(path.join(tree, "etc"), { recursive: true });
      await writeFile(path.join(tree, "etc", "hostname"), "berth\n");
      await writeFile(path.join(tree, "data.bin"), randomBytesFor(1, 300_000));
      const tarFile = path.join(t.root, "layer.tar");
      await run(tar, ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-C", tree, "-cf", tarFile, "."]);
      await run("gzip", ["-k", "-9", tarFile]);
      await run(zstd, ["-q", "-19", tarFile, "-o", `${tarFile}.zst`]);
      const plain = await readFile(tarFile);
      const { stdout } = await run("sha256sum", [tarFile]);
      const diffID = `sha256:${stdout.split(" ")[0]}`;
      expect(sha256(plain)).toBe(diffID);

      const store = await openLayerStore({ root: path.join(t.root, "store") });
      const { createReadStream } = await import("node:fs");
      const z = await store.register(createReadStream(`${tarFile}.zst`), null, { expectedDiffID: diffID });
      expect(z.blob.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
      expect(z.chainID).toBe(diffID);
      expect(z.size).toBe(plain.length);
      const g = await store.register(createReadStream(`${tarFile}.gz`), null, { expectedDiffID: diffID });
      expect(g.existed).toBe(true);
      expect(g.blob).toEqual(z.blob); // the first blob stays the layer's blob
      const p = await store.register(createReadStream(tarFile));
      expect(p.chainID).toBe(diffID);
      expect(sha256(await readAll(await store.openUncompressed(diffID)))).toBe(diffID);
      expect((await store.fsck()).ok).toBe(true);
    } finally {
      await t.cleanup();
    }
  });
});
