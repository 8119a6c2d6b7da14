import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { requirePeer } from "@berth/peers";
import { describe, expect, it } from "vitest";
import * as auto from "../src/index.js";
import { detectCompression, hasCode, type DigestApi } from "../src/index.js";
import * as noble from "../src/noble.js";
import * as wasm from "../src/wasm.js";

const ref = (data: Uint8Array): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** A tar-ish payload: compressible text with some noise. */
function payload(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = i % 7 === 0 ? s >>> 24 : 97 + (i % 26);
  }
  return out;
}

function* split(data: Uint8Array, sizes: number[]): Generator<Uint8Array> {
  let off = 0;
  for (let k = 0; off < data.length; k++) {
    const n = sizes[k % sizes.length]!;
    yield data.subarray(off, off + n);
    off += n;
  }
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  return undefined;
}

const raw = payload(300_000);
const gz = gzipSync(raw);

let zstdBlob: Uint8Array | undefined;
async function zstd(): Promise<Uint8Array | undefined> {
  if (zstdBlob) return zstdBlob;
  const bin = await requirePeer("zstd");
  if (!bin) return undefined;
  zstdBlob = new Uint8Array(execFileSync(bin, ["-q", "-c", "-3"], { input: raw, maxBuffer: 64 << 20 }));
  return zstdBlob;
}

describe("detectCompression", () => {
  it("by magic bytes", () => {
    expect(detectCompression(gz)).toBe("gzip");
    expect(detectCompression(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe("zstd");
    expect(detectCompression(raw)).toBe("none");
    expect(detectCompression(new Uint8Array([0x1f]))).toBe("none");
  });
});

describe.each([
  ["auto", auto.api],
  ["wasm", wasm.api],
  ["noble", noble.api],
] as [string, DigestApi][])("layerDigests (%s)", (_name, api) => {
  it("uncompressed: DiffID = digest", async () => {
    const d = await api.layerDigests(split(raw, [1, 2, 100_000]));
    expect(d).toEqual({ digest: ref(raw), size: raw.length, diffID: ref(raw), uncompressedSize: raw.length, compression: "none" });
  });

  it("gzip: both digests in one pass, any chunking", async () => {
    for (const sizes of [[13, 1], [3, 5000], [gz.length]]) {
      const d = await api.layerDigests(split(gz, sizes));
      expect(d).toEqual({ digest: ref(gz), size: gz.length, diffID: ref(raw), uncompressedSize: raw.length, compression: "gzip" });
    }
  });

  it("zstd (made by Debian's zstd)", async (ctx) => {
    const z = await zstd();
    if (!z) return ctx.skip();
    const d = await api.layerDigests(split(z, [2, 777]));
    expect(d).toEqual({ digest: ref(z), size: z.length, diffID: ref(raw), uncompressedSize: raw.length, compression: "zstd" });
  });

  it("tiny and empty blobs", async () => {
    expect((await api.layerDigests([new Uint8Array([1, 2])])).diffID).toBe(ref(new Uint8Array([1, 2])));
    expect((await api.layerDigests([])).digest).toBe(ref(new Uint8Array(0)));
  });

  it("refuses a decompression bomb with ERR_DECOMPRESSION_LIMIT", async () => {
    const bomb = gzipSync(new Uint8Array(20 << 20));
    expect(await codeOf(api.layerDigests([bomb], { maxUncompressedSize: 1 << 20 }))).toBe("ERR_DECOMPRESSION_LIMIT");
    const z = await zstd();
    if (z) expect(await codeOf(api.layerDigests([z], { maxUncompressedSize: 1000 }))).toBe("ERR_DECOMPRESSION_LIMIT");
  });

  it("corrupt or truncated compressed data is ERR_CORRUPT_DATA", async () => {
    expect(await codeOf(api.layerDigests([gz.subarray(0, gz.length >> 1)]))).toBe("ERR_CORRUPT_DATA");
    const bad = new Uint8Array(gz); // a copy (Buffer#slice would be a view)
    bad.fill(0xff, 20, 400);
    expect(await codeOf(api.layerDigests([bad]))).toBe("ERR_CORRUPT_DATA");
    const z = await zstd();
    if (z) expect(await codeOf(api.layerDigests([z.subarray(0, z.length - 10)]))).toBe("ERR_CORRUPT_DATA");
  });

  it("push-style digester with onUncompressed", async () => {
    let seen = 0;
    const dg = api.createLayerDigester({ onUncompressed: (c) => void (seen += c.length) });
    for (const c of split(gz, [4096])) await dg.push(c);
    const d = await dg.finish();
    expect(d.diffID).toBe(ref(raw));
    expect(seen).toBe(raw.length);
  });
});

it("hasCode works on non-errors", () => {
  expect(hasCode(undefined, "ERR_NOT_FOUND")).toBe(false);
});
