import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CorruptDataError, DataIntegrityError, InvalidArgumentError } from "@berth/digest";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fromWire, toWire } from "@berth/layer-store/threads";
import { FileSource, READ_CHUNK } from "../src/source.js";
import { readTar } from "../src/tar.js";
import { tarOf } from "./helpers.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "berth-workers-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const patterned = (n: number) => new Uint8Array(n).map((_, i) => (i * 7 + (i >> 12)) & 0xff);

async function drain(src: AsyncIterable<Uint8Array>, onChunk?: (total: number) => void): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const c of src) {
    parts.push(Buffer.from(c));
    total += c.length;
    onChunk?.(total);
  }
  return Buffer.concat(parts);
}

describe("FileSource", () => {
  it("yields the file; a skipped range comes as zeros at the same positions, read or not", async () => {
    const bytes = patterned(5 * READ_CHUNK + 1234);
    const file = join(dir, "f");
    writeFileSync(file, bytes);
    expect(Buffer.compare(await drain(new FileSource(file)), Buffer.from(bytes))).toBe(0);
    // Skip from after the first chunk to the middle of the fourth: the reads in flight are dropped.
    const src = new FileSource(file);
    const to = 3 * READ_CHUNK + 500;
    let asked = false;
    const got = await drain(src, (total) => {
      if (!asked) src.skipTo(to);
      asked = true;
      expect(total).toBeGreaterThan(0);
    });
    const want = Buffer.from(bytes);
    want.fill(0, READ_CHUNK, to);
    expect(got.length).toBe(bytes.length);
    expect(Buffer.compare(got, want)).toBe(0);
  });

  it("a skip behind what was read already changes nothing", async () => {
    const bytes = patterned(2 * READ_CHUNK);
    const file = join(dir, "f");
    writeFileSync(file, bytes);
    const src = new FileSource(file);
    const got = await drain(src, () => src.skipTo(10));
    expect(Buffer.compare(got, Buffer.from(bytes))).toBe(0);
  });

  it("readTar asks the source to skip a body nobody read; the next entry is intact", async () => {
    const big = patterned(3 * READ_CHUNK + 77);
    const file = join(dir, "a.tar");
    writeFileSync(file, await tarOf([{ name: "big", body: big }, { name: "after", body: "next entry" }]));
    const src = new FileSource(file);
    const skips: number[] = [];
    const seen: Array<[string, string]> = [];
    const skipBody = (to: number) => {
      skips.push(to);
      src.skipTo(to);
    };
    for await (const e of readTar(src, { skipBody })) {
      if (e.name === "big") {
        expect(e.dataOffset).toBe(512);
        continue; // body not read
      }
      seen.push([e.name, (await drain(e.body())).toString()]);
    }
    expect(skips).toEqual([512 + big.length + (512 - (big.length % 512))]);
    expect(seen).toEqual([["after", "next entry"]]);
  });
});

describe("errors crossing from worker threads", () => {
  it("keep their class, code and details; system errors their code", () => {
    const limit = new InvalidArgumentError("too big", { code: "ERR_DECOMPRESSION_LIMIT", details: { limit: 5 } });
    const back = fromWire(structuredClone(toWire(limit)));
    expect(back).toBeInstanceOf(InvalidArgumentError);
    expect(back).toMatchObject({ code: "ERR_DECOMPRESSION_LIMIT", message: "too big", details: { limit: 5 } });
    const corrupt = fromWire(structuredClone(toWire(new CorruptDataError("bad gzip"))));
    expect(corrupt).toBeInstanceOf(CorruptDataError);
    expect(corrupt).toBeInstanceOf(DataIntegrityError);
    expect(corrupt).toMatchObject({ code: "ERR_CORRUPT_DATA" });
    const sys = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28, syscall: "write" });
    expect(fromWire(structuredClone(toWire(sys)))).toMatchObject({ code: "ENOSPC", errno: -28, syscall: "write", message: sys.message });
  });
});
