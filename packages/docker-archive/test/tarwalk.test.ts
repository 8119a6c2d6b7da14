import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tarStream from "tar-stream";
import { describe, expect, it } from "vitest";
import { readTar, type TarHeaderEntry, tarHeader, walkTarHeaders } from "../src/index.js";

async function packWith(build: (p: tarStream.Pack) => void): Promise<Uint8Array> {
  const p = tarStream.pack();
  build(p);
  p.finalize();
  const parts: Buffer[] = [];
  for await (const c of p) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const chunked = (bytes: Uint8Array, size: number): Uint8Array[] => {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
};

type Seen = Pick<TarHeaderEntry, "rawName" | "name" | "type" | "size" | "linkname" | "mode" | "mtime" | "offset">;

/** What the full reader (tar-stream underneath) reports, bodies skipped. */
async function byReadTar(bytes: Uint8Array): Promise<Seen[] | { code: unknown }> {
  const out: Seen[] = [];
  try {
    for await (const e of readTar(chunked(bytes, 4096))) {
      out.push({ rawName: e.rawName, name: e.name, type: e.type, size: e.size, mode: e.mode, mtime: e.mtime, offset: e.offset, ...(e.linkname !== undefined ? { linkname: e.linkname } : {}) });
    }
  } catch (err) {
    return { code: (err as { code?: unknown }).code };
  }
  return out;
}

/** What the header walker reports, fed in `chunk`-byte pieces. */
async function byWalker(bytes: Uint8Array, chunk: number): Promise<Seen[] | { code: unknown }> {
  const out: Seen[] = [];
  try {
    await walkTarHeaders(chunked(bytes, chunk), (e) => {
      out.push({ rawName: e.rawName, name: e.name, type: e.type, size: e.size, mode: e.mode, mtime: e.mtime, offset: e.offset, ...(e.linkname !== undefined ? { linkname: e.linkname } : {}) });
    });
  } catch (err) {
    return { code: (err as { code?: unknown }).code };
  }
  return out;
}

/** GNU tar's archive of a tree with long names, a long link, a hard link, a deep path, in `format`. */
function gnuTar(format: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "berth-walk-"));
  const src = join(dir, "src");
  const deep = join(src, ...Array.from({ length: 12 }, (_, i) => `dir-${i}-${"d".repeat(10)}`));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, "f.txt"), "deep file");
  writeFileSync(join(src, "n".repeat(140)), "x".repeat(3000));
  writeFileSync(join(src, ".wh.gone"), "");
  symlinkSync("t".repeat(120), join(src, "longlink"));
  execFileSync("ln", [join(src, "n".repeat(140)), join(src, "hard")]);
  // ustar and v7 cannot hold every name: GNU tar leaves those out (exit status 2) and writes the rest
  spawnSync("tar", [`--format=${format}`, "-C", src, "-cf", join(dir, "a.tar"), "."]);
  return readFileSync(join(dir, "a.tar"));
}

describe("walkTarHeaders agrees with readTar", () => {
  it("on GNU tar's gnu, pax, ustar and v7 output, in any chunking", async () => {
    for (const format of ["gnu", "pax", "ustar", "v7"]) {
      const tar = gnuTar(format);
      const want = await byReadTar(tar);
      expect(Array.isArray(want) && want.length >= 5, format).toBe(true);
      for (const chunk of [1, 511, 512, 7919, 1 << 20]) expect(await byWalker(tar, chunk), `${format} / ${chunk}`).toEqual(want);
    }
  });

  it("on tar-stream's PAX names, links and sizes", async () => {
    const tar = await packWith((p) => {
      p.entry({ name: `ü${"p".repeat(150)}` }, "y");
      p.entry({ name: "dir", type: "directory", mode: 0o750 });
      p.entry({ name: "dir/l", type: "symlink", linkname: `../${"q".repeat(200)}` });
      p.entry({ name: "dir/h", type: "link", linkname: `ü${"p".repeat(150)}` });
      p.entry({ name: "big" }, "z".repeat(70_000));
    });
    const want = await byReadTar(tar);
    expect((want as Seen[]).map((e) => e.type)).toEqual(["file", "directory", "symlink", "hardlink", "file"]);
    for (const chunk of [3, 512, 4096]) expect(await byWalker(tar, chunk)).toEqual(want);
  });

  it("on hostile input: same error code for truncation, corrupt checksums, unsafe paths; never an untyped error", async () => {
    const good = await packWith((p) => {
      p.entry({ name: "a" }, "x".repeat(700));
      p.entry({ name: `ü${"p".repeat(150)}` }, "y");
      p.entry({ name: "c", type: "symlink", linkname: "a" });
    });
    const cases: Uint8Array[] = [];
    for (const cut of [1, 511, 600, 1212, 1300, 1600, 2100, 2600, 3000]) cases.push(good.subarray(0, cut));
    const bad = new Uint8Array(good);
    bad[3] = 0x41; // checksum no longer holds
    cases.push(bad);
    const unsafe = tarHeader({ name: "../etc/passwd", type: "file", size: 0 });
    cases.push(Buffer.concat([unsafe, new Uint8Array(1024)]));
    for (const input of cases) {
      const want = await byReadTar(input);
      const got = await byWalker(input, 97);
      expect(got, `input of ${input.length} bytes`).toEqual(want);
    }
    // random corruption: the walker fails only with the typed codes
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 300; i++) {
      const m = new Uint8Array(good);
      for (let k = 0; k < 3; k++) m[rand() % m.length] = rand() & 0xff;
      const got = await byWalker(m, 1 + (rand() % 2000));
      if (!Array.isArray(got)) expect(["ERR_INVALID_TAR", "ERR_TRUNCATED", "ERR_UNSAFE_PATH"]).toContain(got.code);
    }
  });

  it("refuses an extended header over the limit before buffering it", async () => {
    const tar = await packWith((p) => p.entry({ name: `${"a/".repeat(3000)}f` }, "x"));
    const seen: string[] = [];
    await expect(walkTarHeaders([tar], (e) => seen.push(e.name), { maxExtendedHeader: 1024 })).rejects.toMatchObject({ code: "ERR_INVALID_TAR" });
    expect(seen).toEqual([]);
  });

  it("stops at the end-of-archive block and releases the source", async () => {
    const tar = await packWith((p) => p.entry({ name: "a" }, "x"));
    let released = false;
    async function* endless() {
      try {
        yield tar;
        for (;;) yield new Uint8Array(512).fill(0x41);
      } finally {
        released = true;
      }
    }
    const names: string[] = [];
    await walkTarHeaders(endless(), (e) => names.push(e.name));
    expect(names).toEqual(["a"]);
    expect(released).toBe(true);
  });
});
