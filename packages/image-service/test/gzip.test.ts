/**
 * The push's parallel gzip: any input comes back whole through zlib and GNU
 * gzip, the same input gives the same bytes, text (or base64) compresses
 * about as well as one zlib stream, and random bytes go stored.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { crc32, gunzipSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { parallelGzip } from "../src/gzip.js";
import { crc32Combine, stringsPay } from "../src/gzip-block.js";

async function gz(input: Uint8Array, pieces = 7, level?: number): Promise<Buffer> {
  const out: Uint8Array[] = [];
  const step = Math.max(1, Math.ceil(input.length / pieces));
  async function* src() {
    for (let i = 0; i < input.length; i += step) yield input.subarray(i, i + step);
  }
  for await (const c of parallelGzip(src(), level)) out.push(c);
  return Buffer.concat(out);
}

const text = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `line ${i}: the quick brown fox ${(i * 7919) % 997} jumps\n`).join(""));
const random = randomBytes(1_100_000);
/** base64 of random bytes, in lines (keys, certificates, embedded data): repeated strings barely help, so its blocks are deflated with runs only. */
const base64 = Buffer.from(randomBytes(780_000).toString("base64").replace(/.{76}/g, "$&\n"));

describe("parallelGzip", () => {
  it.each([
    ["empty", Buffer.alloc(0)],
    ["one byte", Buffer.from("x")],
    ["text over several blocks", text],
    ["random", random],
    ["text, random, text", Buffer.concat([text.subarray(0, 300_000), random, text])],
    ["exactly one block", text.subarray(0, 1 << 20)],
    ["base64 lines, then text", Buffer.concat([base64, text])],
  ])("%s: zlib and GNU gzip give the input back", async (_name, input) => {
    const out = await gz(input);
    expect(Buffer.compare(gunzipSync(out), input)).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), "berth-gzip-"));
    try {
      writeFileSync(join(dir, "x.gz"), out);
      expect(Buffer.compare(execFileSync("gzip", ["-dc", join(dir, "x.gz")], { maxBuffer: 64 << 20 }), input)).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is deterministic whatever the input's chunking; text about as small as one zlib stream; random stored", async () => {
    const a = await gz(text, 3);
    const b = await gz(text, 101);
    expect(Buffer.compare(a, b)).toBe(0);
    expect(a.length).toBeLessThan(gzipSync(text, { level: 6 }).length * 1.02);
    const r = await gz(random);
    expect(r.length).toBeLessThan(random.length + 1000);
    expect(r.length).toBeGreaterThanOrEqual(random.length);
    // base64: runs only, within a few percent of what deflate's string search gets
    expect(stringsPay(base64.subarray(0, 1 << 20))).toBe(false);
    expect(stringsPay(text.subarray(0, 1 << 20))).toBe(true);
    expect((await gz(base64)).length).toBeLessThan(gzipSync(base64, { level: 6 }).length * 1.03);
    // level 1 is another (bigger) output of the same input
    expect(Buffer.compare(gunzipSync(await gz(text, 5, 1)), text)).toBe(0);
  });
});

describe("parallelGzip's worker threads", () => {
  it("a file read by position gives the same bytes as its stream, short reads too", async () => {
    const input = Buffer.concat([text, random, base64]);
    const reader = {
      // at most 300,001 bytes a call: a block takes several reads
      async read(into: Uint8Array, position: number) {
        const n = Math.max(0, Math.min(into.length, 300_001, input.length - position));
        into.set(input.subarray(position, position + n));
        return n;
      },
    };
    const out: Uint8Array[] = [];
    for await (const c of parallelGzip(reader)) out.push(c);
    expect(Buffer.compare(Buffer.concat(out), await gz(input))).toBe(0);
  });

  it("a Node stream (which has a read method too) is read as a stream", async () => {
    const input = Buffer.concat([text, random]);
    const out: Uint8Array[] = [];
    for await (const c of parallelGzip(Readable.from([input.subarray(0, 700_000), input.subarray(700_000)]))) out.push(c);
    expect(Buffer.compare(Buffer.concat(out), await gz(input))).toBe(0);
  });

  it("a worker's failure is the caller's error, with its code", async () => {
    await expect(gz(text, 3, 42)).rejects.toMatchObject({ code: "ERR_OUT_OF_RANGE" });
    // the workers still serve the next stream
    expect(Buffer.compare(gunzipSync(await gz(text)), text)).toBe(0);
  });

  it("idle workers do not hold the process open", () => {
    const gzipModule = new URL("../dist/gzip.js", import.meta.url).href;
    const script = `const { parallelGzip } = await import(${JSON.stringify(gzipModule)});
      let n = 0; for await (const c of parallelGzip([new Uint8Array(3 << 20).fill(7)])) n += c.length;
      console.log(n);`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { timeout: 20_000, encoding: "utf8" });
    expect(Number(out.trim())).toBeGreaterThan(0);
  });
});

describe("crc32Combine", () => {
  it("joins two parts' CRC-32s into the whole's, for any split", () => {
    const data = randomBytes(200_000);
    for (const cut of [0, 1, 7, 4096, 65_536, 131_071, 199_999, 200_000]) {
      const a = data.subarray(0, cut);
      const b = data.subarray(cut);
      expect(crc32Combine(crc32(a), crc32(b), b.length)).toBe(crc32(data));
    }
    // lengths past 2^32 (a layer's size): joining A+B then C is joining A then B+C
    const [x, y, z] = [crc32(data.subarray(0, 10)), crc32(data.subarray(10, 20)), crc32(data.subarray(20, 30))];
    const [lb, lc] = [3 * 2 ** 31 + 5, 2 ** 33 + 12_345];
    expect(crc32Combine(crc32Combine(x, y, lb), z, lc)).toBe(crc32Combine(x, crc32Combine(y, z, lc), lb + lc));
    expect(crc32Combine(x, y, lb)).not.toBe(crc32Combine(x, y, lb + 1));
  });
});

