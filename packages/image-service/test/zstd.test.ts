import { createHash } from "node:crypto";
import { requirePeer } from "@berth/peers";
import { uncompressedChunks } from "@berth/layer-store";
import { describe, expect, it } from "vitest";
import { zstdCompressor } from "../src/zstd.js";

await requirePeer("zstd"); // Node 20 compresses with the program: a missing one fails under BERTH_REQUIRE_PEERS=1
const compress = await zstdCompressor();

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function* chunks(data: Buffer, size: number, failAt?: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) {
    if (failAt !== undefined && i >= failAt) throw new Error("source failed");
    yield data.subarray(i, i + size);
  }
}

describe.skipIf(!compress)("zstd for pushes (Node's zlib, else the zstd program)", () => {
  const data = Buffer.concat(Array.from({ length: 64 }, (_, i) => createHash("sha256").update(String(i % 7)).digest().toString("hex").repeat(256)).map((s) => Buffer.from(s)));

  it("compresses to a zstd frame that decompresses to the input, the same bytes every run", async () => {
    const a = await collect(compress!(chunks(data, 10_000)));
    expect(a.subarray(0, 4).toString("hex")).toBe("28b52ffd");
    expect(a.length).toBeLessThan(data.length / 10);
    expect(await collect(uncompressedChunks([a]))).toEqual(data);
    expect(await collect(compress!(chunks(data, 3_333)))).toEqual(a);
  });

  it("a source that fails fails the stream", async () => {
    await expect(collect(compress!(chunks(data, 10_000, 500_000)))).rejects.toThrow(/source failed/);
  });
});
