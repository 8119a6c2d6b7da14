// uncompressedChunks / uncompressed: the one sniff-and-decompress of a layer
// blob (openUncompressed here, applyLayer in @berth/cache): every compression
// and source kind, the size limit, broken data as typed errors, the source
// closed however reading ends.
import { PassThrough, Readable } from "node:stream";
import { sha256 } from "@berth/digest";
import { describe, expect, it } from "vitest";
import { randomBytesFor, zstdStored } from "../src/fixtures.js";
import { uncompressed, uncompressedChunks } from "../src/index.js";
import { gz } from "./helpers.js";

async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => "resolved",
    (err: { code?: unknown; message?: unknown }) => ({ code: err.code, message: err.message }),
  );
}

/** A zstd frame of `blocks` RLE blocks of 128 KiB of `byte` each: tiny input, large output. */
function zstdRle(blocks: number, byte = 0): Uint8Array {
  const out = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]; // magic; FHD (no FCS, no checksum); window 128 KiB
  for (let i = 0; i < blocks; i++) {
    const h = (i === blocks - 1 ? 1 : 0) | (1 << 1) | ((128 * 1024) << 3); // last?, RLE, size
    out.push(h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff, byte);
  }
  return new Uint8Array(out);
}

/** `b` as chunks of `n` bytes. */
function split(b: Uint8Array, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
}

const data = randomBytesFor(3, 300_000);
const kinds: Array<[string, Uint8Array]> = [
  ["plain", data],
  ["gzip", gz(data)],
  ["zstd", zstdStored(data)],
];

describe.each(kinds)("uncompressedChunks: %s", (_kind, blob) => {
  it("yields the uncompressed bytes from arrays, split magic bytes, Node streams and web streams", async () => {
    const want = sha256(data);
    expect(sha256(await bytesOf(uncompressedChunks([blob])))).toBe(want);
    expect(sha256(await bytesOf(uncompressedChunks(split(blob, 1 + (blob.length >> 12)))))).toBe(want);
    expect(sha256(await bytesOf(uncompressedChunks([blob.subarray(0, 1), blob.subarray(1, 3), blob.subarray(3)])))).toBe(want);
    expect(sha256(await bytesOf(uncompressedChunks(Readable.from([Buffer.from(blob)]))))).toBe(want);
    expect(sha256(await bytesOf(uncompressedChunks(new Blob([new Uint8Array(blob)]).stream())))).toBe(want);
  });

  it("refuses more than maxUncompressedSize bytes (ERR_DECOMPRESSION_LIMIT), accepts exactly that many", async () => {
    expect(sha256(await bytesOf(uncompressedChunks([blob], { maxUncompressedSize: data.length })))).toBe(sha256(data));
    const err = await codeOf(bytesOf(uncompressedChunks([blob], { maxUncompressedSize: data.length - 1, what: "layer x" })));
    expect(err).toMatchObject({ code: "ERR_DECOMPRESSION_LIMIT", message: expect.stringMatching(/^layer x: /) });
  });

  it("closes a Node stream source when the consumer stops early", async () => {
    const src = Readable.from(split(blob, 4096).map((c) => Buffer.from(c)));
    for await (const _ of uncompressedChunks(src)) break;
    expect(src.destroyed).toBe(true);
  });
});

describe("uncompressedChunks: empty and tiny blobs", () => {
  it("passes them through as plain", async () => {
    expect(await bytesOf(uncompressedChunks([]))).toEqual(new Uint8Array(0));
    expect(await bytesOf(uncompressedChunks([new Uint8Array([0x1f])]))).toEqual(new Uint8Array([0x1f]));
  });
});

describe("uncompressedChunks: broken compressed data", () => {
  const gzipped = gz(data);
  const zstd = zstdStored(data);

  it("corrupt or truncated gzip is ERR_CORRUPT_DATA, named by `what`", async () => {
    const bad = gzipped.slice();
    bad.fill(0xff, 20, 60);
    expect(await codeOf(bytesOf(uncompressedChunks([bad], { what: "layer y" })))).toMatchObject({
      code: "ERR_CORRUPT_DATA",
      message: expect.stringMatching(/^layer y: corrupt gzip data: /),
    });
    expect(await codeOf(bytesOf(uncompressedChunks([gzipped.subarray(0, gzipped.length >> 1)])))).toMatchObject({
      code: "ERR_CORRUPT_DATA",
      message: expect.stringMatching(/^corrupt gzip data: /),
    });
  });

  it("corrupt or truncated zstd is ERR_CORRUPT_DATA", async () => {
    const bad = zstd.slice();
    bad[6] = 0x07; // block header: a reserved block type
    expect(await codeOf(bytesOf(uncompressedChunks([bad])))).toMatchObject({ code: "ERR_CORRUPT_DATA" });
    expect(await codeOf(bytesOf(uncompressedChunks([zstd.subarray(0, zstd.length >> 1)])))).toMatchObject({
      code: "ERR_CORRUPT_DATA",
      message: expect.stringMatching(/corrupt zstd data/),
    });
  });

  it("a zstd bomb stops at the limit and closes its source", async () => {
    const bomb = zstdRle(400); // 1.6 KiB that would decompress to 50 MiB
    expect(sha256(await bytesOf(uncompressedChunks([zstdRle(3, 7)])))).toBe(sha256(new Uint8Array(3 * 128 * 1024).fill(7)));
    const src = Readable.from([Buffer.from(bomb)]);
    expect(await codeOf(bytesOf(uncompressedChunks(src, { maxUncompressedSize: 1 << 20 })))).toMatchObject({ code: "ERR_DECOMPRESSION_LIMIT" });
    expect(src.destroyed).toBe(true);
  });

  it("a source's own error passes through as it is, and the source is closed", async () => {
    for (const blob of [data, gzipped, zstd]) {
      const src = new PassThrough();
      src.write(blob.subarray(0, 1000));
      setTimeout(() => src.destroy(Object.assign(new Error("disk gone"), { code: "EIO" })), 10);
      expect(await codeOf(bytesOf(uncompressedChunks(src)))).toMatchObject({ code: "EIO" });
      expect(src.destroyed).toBe(true);
    }
  });
});

describe("uncompressed: a Node stream over a blob stream", () => {
  it("yields Buffers of the uncompressed bytes", async () => {
    for (const [, blob] of kinds) {
      const chunks: Buffer[] = [];
      for await (const c of uncompressed(Readable.from([Buffer.from(blob)]))) chunks.push(c as Buffer);
      expect(chunks.every((c) => Buffer.isBuffer(c))).toBe(true);
      expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
    }
  });

  it("destroys the blob stream when it is destroyed, even before its first read", async () => {
    const blob = Readable.from([Buffer.from(gz(data))]);
    const out = uncompressed(blob);
    out.destroy();
    await new Promise((r) => out.once("close", r));
    expect(blob.destroyed).toBe(true);
  });

  it("passes the limit on", async () => {
    const out = uncompressed(Readable.from([Buffer.from(gz(data))]), { maxUncompressedSize: 1000 });
    expect(await codeOf(bytesOf(out))).toMatchObject({ code: "ERR_DECOMPRESSION_LIMIT" });
  });
});
