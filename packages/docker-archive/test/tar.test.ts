import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import * as tarStream from "tar-stream";
import { describe, expect, it } from "vitest";
import { normalizeEntryName, readTar, resolveLinkTarget, TAR_TRAILER_SIZE, tarEntrySize, tarHeader, tarPadding } from "../src/index.js";

async function packWith(build: (p: tarStream.Pack) => void): Promise<Uint8Array> {
  const p = tarStream.pack();
  build(p);
  p.finalize();
  const parts: Buffer[] = [];
  for await (const c of p) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function entriesOf(bytes: Uint8Array, chunk = 7919) {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk));
  const out: Array<{ name: string; type: string; size: number; linkname?: string; data: string }> = [];
  for await (const e of readTar(chunks)) {
    const parts: Uint8Array[] = [];
    for await (const c of e.body()) parts.push(c);
    out.push({ name: e.name, type: e.type, size: e.size, ...(e.linkname ? { linkname: e.linkname } : {}), data: Buffer.concat(parts).toString() });
  }
  return out;
}

describe("normalizeEntryName", () => {
  it("drops ./, repeated and trailing slashes", () => {
    expect(normalizeEntryName("./manifest.json")).toBe("manifest.json");
    expect(normalizeEntryName("blobs//sha256///ab")).toBe("blobs/sha256/ab");
    expect(normalizeEntryName("./a/./b/")).toBe("a/b");
    expect(normalizeEntryName("./")).toBe("");
  });
  it("refuses .. and absolute names with ERR_UNSAFE_PATH", () => {
    for (const bad of ["../x", "a/../../x", "a/..", "/etc/passwd", "a\0b"]) {
      expect(() => normalizeEntryName(bad)).toThrow(expect.objectContaining({ code: "ERR_UNSAFE_PATH" }));
    }
  });
});

describe("resolveLinkTarget", () => {
  it("resolves symlinks relative to the link and hardlinks from the root", () => {
    expect(resolveLinkTarget("b/layer.tar", "../a/layer.tar", "symlink")).toBe("a/layer.tar");
    expect(resolveLinkTarget("b/layer.tar", "a/layer.tar", "hardlink")).toBe("a/layer.tar");
  });
  it("refuses targets outside the archive with ERR_UNSAFE_LINK", () => {
    for (const [n, t, k] of [
      ["b/layer.tar", "../../x", "symlink"],
      ["x", "/etc/passwd", "symlink"],
      ["x", "../y", "hardlink"],
    ] as const) {
      expect(() => resolveLinkTarget(n, t, k)).toThrow(expect.objectContaining({ code: "ERR_UNSAFE_LINK" }));
    }
  });
});

describe("readTar", () => {
  it("reads what tar-stream writes, including PAX long names and links, in any chunking", async () => {
    const long = `${"d".repeat(120)}/ü-${"f".repeat(150)}`;
    const tar = await packWith((p) => {
      p.entry({ name: "./dir/", type: "directory" });
      p.entry({ name: "./dir/a.txt" }, "hello");
      p.entry({ name: long }, "long");
      p.entry({ name: "dir/link", type: "symlink", linkname: "a.txt" });
      p.entry({ name: "hard", type: "link", linkname: "dir/a.txt" });
      p.entry({ name: "empty" }, "");
    });
    for (const chunk of [1, 511, 512, 513, 1 << 20]) {
      const es = await entriesOf(tar, chunk);
      expect(es.map((e) => [e.name, e.type, e.data])).toEqual([
        ["dir", "directory", ""],
        ["dir/a.txt", "file", "hello"],
        [long, "file", "long"],
        ["dir/link", "symlink", ""],
        ["hard", "hardlink", ""],
        ["empty", "file", ""],
      ]);
      expect(es[3]!.linkname).toBe("a.txt");
    }
  });

  it("reads GNU tar output (long names via GNU LongLink)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-tar-"));
    const long = "n".repeat(140);
    mkdirSync(join(dir, "src"));
    writeFileSync(join(dir, "src", long), "gnu");
    symlinkSync(long, join(dir, "src", "sl"));
    execFileSync("tar", ["--format=gnu", "-C", join(dir, "src"), "-cf", join(dir, "a.tar"), "."]);
    const es = await entriesOf(readFileSync(join(dir, "a.tar")));
    const byName = new Map(es.map((e) => [e.name, e]));
    expect(byName.get(long)?.data).toBe("gnu");
    expect(byName.get("sl")?.linkname).toBe(long);
  });

  it("fails with ERR_TRUNCATED when the input ends inside an entry or a header", async () => {
    const tar = await packWith((p) => p.entry({ name: "a" }, "x".repeat(2000)));
    for (const cut of [100, 512 + 1000, 512 + 2000]) {
      await expect(entriesOf(tar.subarray(0, cut))).rejects.toMatchObject({ code: "ERR_TRUNCATED" });
    }
  });

  it("fails with ERR_INVALID_TAR on a corrupt header checksum", async () => {
    const tar = new Uint8Array(await packWith((p) => p.entry({ name: "a" }, "x")));
    tar[0] = "b".charCodeAt(0);
    await expect(entriesOf(tar)).rejects.toMatchObject({ code: "ERR_INVALID_TAR" });
  });

  it("skips bodies the consumer does not read", async () => {
    const tar = await packWith((p) => {
      p.entry({ name: "a" }, "x".repeat(5000));
      p.entry({ name: "b" }, "y");
    });
    const names: string[] = [];
    for await (const e of readTar([tar])) names.push(e.name);
    expect(names).toEqual(["a", "b"]);
  });
});

/** A 512-byte header from our writer, edited by `edit`, with its checksum recomputed. */
function craftHeader(name: string, size: number, edit: (h: Uint8Array) => void = () => {}): Uint8Array {
  const h = tarHeader({ name, type: "file", size });
  edit(h);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(Buffer.from(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
  return h;
}

const body = (s: string | Uint8Array) => {
  const b = typeof s === "string" ? Buffer.from(s) : s;
  return [b, tarPadding(b.length)];
};
const setType = (flag: string) => (h: Uint8Array) => {
  h[156] = flag.charCodeAt(0);
};
/** A base-256 size field (GNU tar: 0x80 then the number, big-endian). */
const base256Size = (v: number) => (h: Uint8Array) => {
  h.fill(0, 124, 136);
  h[124] = 0x80;
  let x = v;
  for (let i = 135; i > 124; i--) {
    h[i] = x % 256;
    x = Math.floor(x / 256);
  }
};
const tarOf = (...parts: Uint8Array[]) => Buffer.concat(parts);
const trailer = () => new Uint8Array(TAR_TRAILER_SIZE);

describe("readTar on hand-made headers", () => {
  it("reads GNU LongLink (K) and LongName (L) records", async () => {
    const longName = `${"n".repeat(130)}/file`;
    const longTarget = `${"t".repeat(200)}/target`;
    const tar = tarOf(
      craftHeader("././@LongLink", longTarget.length + 1, setType("K")),
      ...body(`${longTarget}\0`),
      craftHeader("short-name", 0, setType("2")),
      craftHeader("././@LongLink", longName.length + 1, setType("L")),
      ...body(`${longName}\0`),
      craftHeader("x", 3),
      ...body("abc"),
      trailer(),
    );
    for (const chunk of [1, 100, 512, 1 << 20]) {
      const es = await entriesOf(tar, chunk);
      expect(es).toEqual([
        { name: "short-name", type: "symlink", size: 0, linkname: longTarget, data: "" },
        { name: longName, type: "file", size: 3, data: "abc" },
      ]);
    }
  });

  it("reads base-256 sizes, and refuses negative or unsafe ones with ERR_INVALID_TAR", async () => {
    const tar = tarOf(craftHeader("b256", 0, base256Size(5)), ...body("hello"), trailer());
    expect(await entriesOf(tar)).toEqual([{ name: "b256", type: "file", size: 5, data: "hello" }]);
    // An 8 GiB entry (what writers switch to base-256 for): the size is exact; the body is missing.
    const big = 8 * 1024 ** 3;
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const e of readTar([craftHeader("big", 0, base256Size(big)), new Uint8Array(4096)])) {
          seen.push(e.size);
          for await (const _ of e.body());
        }
      })(),
    ).rejects.toMatchObject({ code: "ERR_TRUNCATED" });
    expect(seen).toEqual([big]);
    for (const last of [0xff, 0xfe]) {
      // -1 and -2 in two's complement base-256.
      const negative = craftHeader("neg", 0, (h) => {
        h.fill(0xff, 124, 136);
        h[135] = last;
      });
      await expect(entriesOf(tarOf(negative, trailer()))).rejects.toMatchObject({ code: "ERR_INVALID_TAR" });
    }
    const unsafe = craftHeader("huge", 0, (h) => {
      h.fill(0xff, 124, 136);
      h[124] = 0x80;
    });
    await expect(entriesOf(tarOf(unsafe, trailer()))).rejects.toMatchObject({ code: "ERR_INVALID_TAR" });
  });

  it("refuses a PAX path with .. (ERR_UNSAFE_PATH) and a bad PAX size (ERR_INVALID_TAR)", async () => {
    const pax = (records: string) => {
      const b = Buffer.from(records);
      return [craftHeader("PaxHeader", b.length, setType("x")), ...body(b)];
    };
    const rec = (k: string, v: string) => {
      const line = ` ${k}=${v}\n`;
      let n = Buffer.byteLength(line) + 1;
      while (Buffer.byteLength(`${n}${line}`) !== n) n++;
      return `${n}${line}`;
    };
    const escaping = tarOf(...pax(rec("path", "a/../../etc/passwd")), craftHeader("innocent", 1), ...body("x"), trailer());
    await expect(entriesOf(escaping)).rejects.toMatchObject({ code: "ERR_UNSAFE_PATH" });
    const absolute = tarOf(...pax(rec("path", "/etc/passwd")), craftHeader("innocent", 1), ...body("x"), trailer());
    await expect(entriesOf(absolute)).rejects.toMatchObject({ code: "ERR_UNSAFE_PATH" });
    const badSize = tarOf(...pax(rec("size", "12abc")), craftHeader("f", 1), ...body("x"), trailer());
    await expect(entriesOf(badSize)).rejects.toMatchObject({ code: "ERR_INVALID_TAR" });
    const ok = tarOf(...pax(rec("path", "ü/long") + rec("size", "2")), craftHeader("f", 0), ...body("hi"), trailer());
    expect(await entriesOf(ok)).toEqual([{ name: "ü/long", type: "file", size: 2, data: "hi" }]);
  });

  it("ERR_TRUNCATED inside a header, an extended header, a body and padding; an extended header without its entry", async () => {
    const tar = await packWith((p) => {
      p.entry({ name: "a" }, "x".repeat(700));
      p.entry({ name: `ü${"p".repeat(150)}` }, "y"); // no "/" to split at, not ASCII: a PAX path
    });
    // a's header 0–512, body 512–1212, padding –1536; PAX header 1536–2048, records –2560; b's header –3072.
    for (const cut of [1, 511, 600, 1212, 1300, 1600, 2100, 2600, 3000]) {
      await expect(entriesOf(tar.subarray(0, cut), 97)).rejects.toMatchObject({ code: "ERR_TRUNCATED" });
    }
    // Skipping bodies does not hide the truncation either.
    await expect(
      (async () => {
        for await (const _ of readTar([tar.subarray(0, 1300)]));
      })(),
    ).rejects.toMatchObject({ code: "ERR_TRUNCATED" });
    await expect(entriesOf(tar.subarray(0, 2560))).rejects.toMatchObject({ code: "ERR_TRUNCATED" });
    // Ending on a block boundary with no end-of-archive marker is accepted (as Go's archive/tar does).
    expect((await entriesOf(tar.subarray(0, 1536))).map((e) => e.name)).toEqual(["a"]);
  });

  it("stops at the end-of-archive block: trailing garbage is ignored and not read", async () => {
    const tar = await packWith((p) => p.entry({ name: "a" }, "x"));
    const garbage = Buffer.from("this is not a tar header, just bytes after the end ".repeat(30));
    for (const tail of [garbage, garbage.subarray(0, 100), Buffer.concat([new Uint8Array(9216), garbage])]) {
      for (const chunk of [1, 512, 1 << 20]) {
        expect((await entriesOf(tarOf(tar, tail), chunk)).map((e) => e.name)).toEqual(["a"]);
      }
    }
    // A single zero block ends the archive too.
    const one = tarOf(tar.subarray(0, 1024), new Uint8Array(512), craftHeader("after", 0));
    expect((await entriesOf(one)).map((e) => e.name)).toEqual(["a"]);
    // The source is released, not drained: a source that would never end.
    let pulled = 0;
    let released = false;
    async function* endless() {
      try {
        yield tarOf(tar, garbage);
        for (;;) {
          pulled++;
          yield garbage;
        }
      } finally {
        released = true;
      }
    }
    const names: string[] = [];
    for await (const e of readTar(endless())) names.push(e.name);
    expect(names).toEqual(["a"]);
    expect(released).toBe(true);
    expect(pulled).toBeLessThanOrEqual(1);
  });

  it("skips bytes a link header claims, and passes the source's own errors through", async () => {
    const tar = tarOf(craftHeader("l", 5, setType("2")), ...body("junk!"), craftHeader("f", 2), ...body("ok"), trailer());
    const es = await entriesOf(tar);
    expect(es.map((e) => [e.name, e.type, e.size, e.data])).toEqual([
      ["l", "symlink", 0, ""],
      ["f", "file", 2, "ok"],
    ]);
    const boom = Object.assign(new Error("source broke"), { code: "ERR_SOURCE" });
    async function* failing() {
      yield tar.subarray(0, 1100);
      throw boom;
    }
    await expect(entriesOf(Buffer.alloc(0)).then(() => "empty ok")).resolves.toBe("empty ok");
    const read = async () => {
      for await (const e of readTar(failing())) for await (const _ of e.body());
    };
    await expect(read()).rejects.toBe(boom);
  });

  it("reports each entry's header offset", async () => {
    const tar = await packWith((p) => {
      p.entry({ name: "a" }, "x".repeat(600));
      p.entry({ name: `ü${"p".repeat(150)}` }, "y"); // no "/" to split at, not ASCII: a PAX path
      p.entry({ name: "c" }, "z");
    });
    const offsets: number[] = [];
    for await (const e of readTar([tar])) offsets.push(e.offset);
    // a at 0; the PAX header of the long name at 1536, its entry header at 2560; c after its one-block body.
    expect(offsets).toEqual([0, 2560, 3584]);
  });
});

describe("tar writer", () => {
  it("writes headers tar-stream and GNU tar read back, with the predicted size", async () => {
    const files = [
      { name: "blobs/", type: "directory" as const, body: "" },
      { name: `blobs/sha256/${"a".repeat(64)}`, type: "file" as const, body: "layer bytes" },
      { name: "manifest.json", type: "file" as const, body: "[]" },
    ];
    const parts: Uint8Array[] = [];
    let predicted = TAR_TRAILER_SIZE;
    for (const f of files) {
      parts.push(tarHeader({ name: f.name, type: f.type, size: f.body.length, mtime: 1700000000 }));
      parts.push(Buffer.from(f.body), tarPadding(f.body.length));
      predicted += tarEntrySize(f.body.length);
    }
    parts.push(new Uint8Array(TAR_TRAILER_SIZE));
    const tar = Buffer.concat(parts);
    expect(tar.length).toBe(predicted);
    const ex = tarStream.extract();
    const seen: Array<[string, string, number, number]> = [];
    ex.on("entry", (h, s, next) => {
      const b: Buffer[] = [];
      s.on("data", (c: unknown) => {
        b.push(c as Buffer);
      });
      s.on("end", () => {
        seen.push([h.name, Buffer.concat(b).toString(), h.uid ?? -1, h.mtime!.getTime() / 1000]);
        next();
      });
    });
    Readable.from([tar]).pipe(ex);
    await new Promise<void>((r) => ex.on("finish", () => r()));
    expect(seen).toEqual([
      ["blobs/", "", 0, 1700000000],
      [`blobs/sha256/${"a".repeat(64)}`, "layer bytes", 0, 1700000000],
      ["manifest.json", "[]", 0, 1700000000],
    ]);
    const dir = mkdtempSync(join(tmpdir(), "berth-tarw-"));
    writeFileSync(join(dir, "t.tar"), tar);
    const listing = execFileSync("tar", ["-tvf", join(dir, "t.tar")]).toString();
    expect(listing).toContain("manifest.json");
  });
});
