import { execFileSync } from "node:child_process";
import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryLayerStore, INVALID_LAYER_TAR, openLayerStore, TarCheck } from "../src/index.js";
import { randomBytesFor, tarFor } from "../src/fixtures.js";

/** Run the check over `bytes` cut into chunks of the given sizes (cycled). */
function check(bytes: Uint8Array, sizes: number[] = [bytes.length || 1]) {
  const c = new TarCheck();
  let off = 0;
  for (let k = 0; off < bytes.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length]!);
    c.push(bytes.subarray(off, off + n));
    off += n;
  }
  return c.finish();
}

const SPLITS = [[1], [7, 500, 3], [511], [512], [513, 1024], [65536]];

function expectValid(bytes: Uint8Array) {
  for (const s of SPLITS) expect(check(bytes, s), `chunks ${s}`).toBeUndefined();
}

function expectInvalid(bytes: Uint8Array, message: RegExp) {
  for (const s of SPLITS) {
    const err = check(bytes, s);
    expect(err?.code, `chunks ${s}`).toBe(INVALID_LAYER_TAR);
    expect(err?.message).toMatch(message);
  }
}

/** Recompute a ustar header's checksum after editing it. */
function fixChecksum(tar: Uint8Array, at = 0) {
  tar.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += tar[at + i]!;
  const s = `${sum.toString(8).padStart(6, "0")}\0 `;
  for (let i = 0; i < 8; i++) tar[at + 148 + i] = s.charCodeAt(i);
}

/** A PAX 'x' header with `records` as its data, followed by `tarFor(1, 100)`'s entry. */
function paxTar(records: string): Uint8Array {
  const data = Buffer.from(records);
  const head = tarFor(1, 0).subarray(0, 512).slice();
  head.fill(0, 0, 100);
  head.set(Buffer.from("PaxHeaders/f1"), 0);
  head.set(Buffer.from(`${data.length.toString(8).padStart(11, "0")}\0`), 124);
  head[156] = 0x78; // 'x'
  fixChecksum(head);
  const padded = new Uint8Array((data.length + 511) & ~511);
  padded.set(data);
  return Buffer.concat([head, padded, tarFor(1, 100)]);
}

describe("TarCheck", () => {
  let dir: string;
  const gnuTar = (format: string, ...args: string[]) =>
    new Uint8Array(execFileSync("tar", ["-C", path.join(dir, "tree"), `--format=${format}`, "-cf", "-", ...args], { maxBuffer: 64 << 20 }));

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "berth-tarcheck-"));
    const tree = path.join(dir, "tree");
    mkdirSync(path.join(tree, "empty-dir"), { recursive: true });
    const long = path.join(tree, "d".repeat(90), "e".repeat(90));
    mkdirSync(long, { recursive: true });
    writeFileSync(path.join(long, `${"f".repeat(120)}.txt`), "a long name\n");
    writeFileSync(path.join(tree, "ünïcødé-名前.txt"), "unicode\n");
    writeFileSync(path.join(tree, "random.bin"), randomBytesFor(3, 100_000));
    writeFileSync(path.join(tree, "empty.txt"), "");
    symlinkSync("random.bin", path.join(tree, "link"));
    linkSync(path.join(tree, "random.bin"), path.join(tree, "hard"));
    writeFileSync(path.join(tree, ".wh.gone"), "");
    // A sparse file with 12 data regions: GNU format needs extension blocks for it.
    const fd = openSync(path.join(tree, "sparse.img"), "w");
    for (let i = 0; i < 12; i++) writeSync(fd, randomBytesFor(10 + i, 4096), 0, 4096, i * (1 << 20));
    closeSync(fd);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("accepts what GNU tar writes in every format (long and unicode names, links, sparse files), in any chunking", () => {
    for (const format of ["gnu", "oldgnu", "pax"]) {
      expectValid(gnuTar(format, "."));
      expectValid(gnuTar(format, "--sparse", "."));
    }
    // ustar holds no name longer than 255 bytes: the other entries
    expectValid(gnuTar("ustar", "random.bin", "hard", "link", "empty.txt", ".wh.gone", "empty-dir"));
    expectValid(tarFor(5, 1000));
    expectValid(tarFor(6, 512));
    expectValid(tarFor(7, 0));
  });

  it("accepts an empty layer, a missing end-of-archive marker and bytes after it, as Go's reader does", () => {
    expectValid(new Uint8Array(0));
    expectValid(new Uint8Array(1024));
    const t = tarFor(8, 700);
    expectValid(t.subarray(0, t.length - 1024)); // ends on a header boundary
    expectValid(Buffer.concat([t, randomBytesFor(9, 3000)])); // trailing bytes after the marker are not read
    expectValid(paxTar("19 path=f1-renamed\n"));
  });

  it("refuses bytes that are not a tar with ERR_INVALID_TAR", () => {
    expectInvalid(randomBytesFor(1, 5000), /bad header checksum at byte 0/);
    expectInvalid(new Uint8Array(Buffer.from("hello, layer\n")), /ends inside a header/);
  });

  it("refuses damaged archives: checksum, number fields, truncation, a lone zero block", () => {
    const t = tarFor(2, 3000);
    const flipped = t.slice();
    flipped[10] = flipped[10]! ^ 1;
    expectInvalid(flipped, /bad header checksum at byte 0/);
    const badSize = t.slice();
    badSize.set(Buffer.from("0000000x000"), 124);
    fixChecksum(badSize);
    expectInvalid(badSize, /bad size field at byte 0/);
    const badMode = t.slice();
    badMode.set(Buffer.from("09"), 100);
    fixChecksum(badMode);
    expectInvalid(badMode, /bad mode field/);
    expectInvalid(t.subarray(0, 2000), /ends inside an entry's data/);
    expectInvalid(t.subarray(0, 512 + 3000 + 10), /ends inside an entry's padding/);
    expectInvalid(t.subarray(0, 300), /ends inside a header/);
    const two = Buffer.concat([t.subarray(0, 512 + 3072), new Uint8Array(512), tarFor(3, 10)]);
    expectInvalid(two, /a zero block followed by a header at byte 4096/);
    // the second entry's header is damaged
    const second = Buffer.concat([t.subarray(0, 512 + 3072), tarFor(4, 10)]);
    second[512 + 3072 + 20] = second[512 + 3072 + 20]! ^ 0xff;
    expectInvalid(second, /bad header checksum at byte 3584/);
  });

  it("reads PAX size records and refuses malformed or oversized extended headers", () => {
    // A PAX size of 100 matches the entry; one of 5000 makes its data overrun the input.
    expectValid(paxTar("12 size=100\n"));
    expectInvalid(paxTar("13 size=5000\n"), /ends inside an entry's data/);
    expectInvalid(paxTar("99 size=100\n"), /malformed PAX record at byte 0/);
    expectInvalid(paxTar("12 size=1x0\n"), /bad PAX size/);
    expectInvalid(paxTar("8 noeq\n"), /malformed PAX record/);
    const huge = tarFor(1, 0).subarray(0, 512).slice();
    huge.set(Buffer.from(`${(2 << 20).toString(8).padStart(11, "0")}\0`), 124);
    huge[156] = 0x78;
    fixChecksum(huge);
    expectInvalid(huge, /extended header of 2097152 bytes/);
  });
});

describe("register refuses a layer that is not a tar", () => {
  for (const [name, open] of [
    ["filesystem", (root: string) => openLayerStore({ root })],
    ["memory", async () => createMemoryLayerStore()],
  ] as const) {
    it(`${name}: typed error, nothing stored, plain and gzip`, async () => {
      const root = mkdtempSync(path.join(tmpdir(), "berth-tarcheck-store-"));
      const s = await open(root);
      const good = await s.register([tarFor(1, 2000)]);
      for (const bad of [randomBytesFor(2, 4000), gzipSync(randomBytesFor(3, 4000))]) {
        await expect(s.register([bad])).rejects.toMatchObject({ code: INVALID_LAYER_TAR });
      }
      expect((await s.list()).map((l) => l.chainID)).toEqual([good.chainID]);
      const blobs: string[] = [];
      for await (const b of s.content.list()) blobs.push(b.digest);
      expect(blobs).toEqual([good.blob.digest]);
      rmSync(root, { recursive: true, force: true });
    });
  }
});
