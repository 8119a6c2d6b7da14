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
