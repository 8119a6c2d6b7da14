import { execFileSync } from "node:child_process";
import { chmod, chown, link, lutimes, mkdir, mkdtemp, readdir, rm, symlink, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { sha256 } from "@berth/digest";
import { extract } from "tar-stream";
import { afterEach, describe, expect, it } from "vitest";
import {
  type Change,
  compareNames,
  DiffErrorCode,
  diffDirectory,
  diffTrees,
  directoryTree,
  emptyTree,
  entriesTree,
  IdentityMapping,
  type ListedEntry,
  sameEntry,
  sameTime,
  writeLayer,
} from "../index.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "berth-diff-"));
  dirs.push(d);
  return d;
}

const T = new Date("2024-01-02T03:04:05Z");

/** A tree of files (string = file contents, null = directory, {link} = symlink), every mtime T. */
async function makeTree(root: string, spec: Record<string, string | null | { link: string }>): Promise<string> {
  await mkdir(root, { recursive: true });
  for (const [rel, v] of Object.entries(spec)) {
    const p = join(root, rel);
    await mkdir(join(p, ".."), { recursive: true });
    if (v === null) await mkdir(p, { recursive: true });
    else if (typeof v === "string") await writeFile(p, v);
    else await symlink(v.link, p);
  }
  await touchAll(root);
  return root;
}

/** Every path under root (and root) gets mtime T, deepest first. */
async function touchAll(root: string): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      if (e.isSymbolicLink()) await lutimes(p, T, T);
      else await utimes(p, T, T);
    }
  };
  await walk(root);
  await utimes(root, T, T);
}

/** `cp -a`: the same tree with the same metadata. */
function copyTree(from: string, to: string): string {
  execFileSync("cp", ["-a", from, to]);
  return to;
}

const LETTER = { added: "A", changed: "C", removed: "D" } as const;
const summary = (changes: Change[]) => changes.map((c) => `${LETTER[c.kind]} ${c.path}${c.opaque ? " (opaque)" : ""}`);

interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  linkname: string | null;
  body: string;
}

async function readTar(stream: AsyncIterable<Uint8Array>): Promise<TarEntry[]> {
  const ex = extract();
  const out: TarEntry[] = [];
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const h = entry.header;
      out.push({
        name: h.name,
        type: h.type ?? "file",
        mode: h.mode ?? 0,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        mtime: (h.mtime?.getTime() ?? 0) / 1000,
        size: h.size ?? 0,
        linkname: h.linkname ?? null,
        body: Buffer.concat(chunks).toString("utf8"),
      });
    }
  })();
  Readable.from(stream).pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

async function tarBytes(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

describe("diffTrees of two directories", () => {
  it("an identical copy has no changes", async () => {
    const d = await tmp();
    const lower = await makeTree(join(d, "lower"), { "a.txt": "a", "dir/b.txt": "b", "dir/sub/c": "c", "ln": { link: "a.txt" } });
    const upper = copyTree(lower, join(d, "upper"));
    expect(await diffDirectory(directoryTree(lower), upper)).toEqual([]);
  });

  it("lists added, changed and removed paths, parents first, names in byte order, parents of changes as changed", async () => {
    const d = await tmp();
    const lower = await makeTree(join(d, "lower"), { "a.txt": "a", "dir/b.txt": "b", "dir/sub/c": "c", "gone.txt": "x", "gonedir/x": "x", "gonedir/y/z": "z" });
    const upper = copyTree(lower, join(d, "upper"));
    await writeFile(join(upper, "dir", "sub", "new"), "n");
    await writeFile(join(upper, "a.txt"), "longer");
    await rm(join(upper, "gone.txt"));
    await rm(join(upper, "gonedir"), { recursive: true });
    await mkdir(join(upper, "added", "deep"), { recursive: true });
    await writeFile(join(upper, "added", "deep", "f"), "f");
    await writeFile(join(upper, "Z"), "upper-case sorts first");
    const changes = await diffDirectory(directoryTree(lower), upper);
    expect(summary(changes)).toEqual([
      "A Z",
      "C a.txt",
      "A added",
      "A added/deep",
      "A added/deep/f",
      "C dir",
      "C dir/sub",
      "A dir/sub/new",
      "D gone.txt",
      "D gonedir", // what was under it is not listed
    ]);
    const a = changes.find((c) => c.path === "a.txt")!;
    expect(a.entry?.size).toBe(6);
    expect(a.lower?.size).toBe(1);
  });

  it("tells changes by size, mode, mtime, owner and link target; keeps a same-size same-mtime rewrite unless asked to compare contents", async () => {
    const d = await tmp();
    const lower = await makeTree(join(d, "lower"), {
      size: "12345",
      mode: "m",
      mtime: "t",
      owner: "o",
      link: { link: "target-a" },
      same: "abc",
      dirmode: null,
      "dirmtime/x": "x",
    });
    const upper = copyTree(lower, join(d, "upper"));
    await writeFile(join(upper, "size"), "123456");
    await chmod(join(upper, "mode"), 0o600);
    await utimes(join(upper, "mtime"), T, new Date(T.getTime() + 1000));
    if (process.getuid?.() === 0) await chown(join(upper, "owner"), 1234, 5678);
    await rm(join(upper, "link"));
    await symlink("target-b", join(upper, "link")); // same length as before
    await writeFile(join(upper, "same"), "xyz");
    await utimes(join(upper, "same"), T, T);
    await chmod(join(upper, "dirmode"), 0o700);
    await utimes(join(upper, "dirmtime"), T, new Date(T.getTime() + 5000)); // a directory's mtime alone is no change
    await utimes(join(upper, "size"), T, T);
    await touchRoot(upper);
    const expected = ["C dirmode", "C link", "C mode", "C mtime", ...(process.getuid?.() === 0 ? ["C owner"] : []), "C size"];
    expect(summary(await diffDirectory(directoryTree(lower), upper))).toEqual(expected);
    const withContent = summary(await diffDirectory(directoryTree(lower), upper, { compareContent: true }));
    expect(withContent).toEqual([...expected, "C same"].sort());
    const owner = (await diffDirectory(directoryTree(lower), upper)).find((c) => c.path === "owner");
    if (owner) expect([owner.entry?.uid, owner.entry?.gid]).toEqual([1234, 5678]);
  });

  it("a directory replaced by a file, and a file by a directory, are changes of that path", async () => {
    const d = await tmp();
    const lower = await makeTree(join(d, "lower"), { "wasdir/a": "a", "wasdir/b/c": "c", wasfile: "f" });
    const upper = copyTree(lower, join(d, "upper"));
    await rm(join(upper, "wasdir"), { recursive: true });
    await writeFile(join(upper, "wasdir"), "now a file");
    await rm(join(upper, "wasfile"));
    await mkdir(join(upper, "wasfile"));
    await writeFile(join(upper, "wasfile", "inside"), "i");
    const changes = await diffDirectory(directoryTree(lower), upper);
    expect(summary(changes)).toEqual(["C wasdir", "C wasfile", "A wasfile/inside"]);
    const tar = await readTar(writeLayer(directoryTree(upper), changes));
    // no whiteouts: the file entry replaces the directory below whole, and the directory the file
    expect(tar.map((e) => `${e.type} ${e.name}`)).toEqual(["file wasdir", "directory wasfile/", "file wasfile/inside"]);
    expect(tar[0]!.body).toBe("now a file");
  });

  it("a directory whose lower children are all gone is opaque; its removed children get no whiteouts", async () => {
    const d = await tmp();
    const lower = await makeTree(join(d, "lower"), { "data/old1": "1", "data/old2/x": "2", "keep/a": "a", "keep/b": "b" });
    const upper = copyTree(lower, join(d, "upper"));
    await rm(join(upper, "data"), { recursive: true });
    await mkdir(join(upper, "data"));
    await writeFile(join(upper, "data", "new"), "n");
    await rm(join(upper, "keep", "a"));
    await utimes(join(upper, "data"), T, T);
    const changes = await diffDirectory(directoryTree(lower), upper);
    expect(summary(changes)).toEqual(["C data (opaque)", "A data/new", "D data/old1", "D data/old2", "C keep", "D keep/a"]);
    const tar = await readTar(writeLayer(directoryTree(upper), changes));
    expect(tar.map((e) => e.name)).toEqual(["data/", "data/.wh..wh..opq", "data/new", "keep/", "keep/.wh.a"]);
    const wh = tar.find((e) => e.name === "keep/.wh.a")!;
    expect([wh.type, wh.mode, wh.size, wh.uid, wh.gid]).toEqual(["file", 0, 0, 0, 0]);
    // an emptied directory is opaque too (one marker instead of a whiteout per child)
    await rm(join(upper, "keep", "b"));
    expect(summary(await diffDirectory(directoryTree(lower), upper)).filter((s) => s.includes("keep"))).toEqual(["C keep (opaque)", "D keep/a", "D keep/b"]);
  });

  it("a removed directory is one whiteout", async () => {
    const d = await tmp();
    const lower = await makeTree(join(d, "lower"), { "etc/conf/a": "a", "etc/conf/b": "b", "etc/other": "o" });
    const upper = copyTree(lower, join(d, "upper"));
    await rm(join(upper, "etc", "conf"), { recursive: true });
    const tar = await readTar(writeLayer(directoryTree(upper), await diffDirectory(directoryTree(lower), upper)));
    expect(tar.map((e) => e.name)).toEqual(["etc/", "etc/.wh.conf"]);
  });

  it("refuses an upper that is not a directory", async () => {
    const d = await tmp();
    await writeFile(join(d, "f"), "x");
    await expect(diffDirectory(emptyTree(), join(d, "f"))).rejects.toMatchObject({ code: DiffErrorCode.NOT_A_DIRECTORY });
    await expect(diffDirectory(emptyTree(), join(d, "missing"))).rejects.toMatchObject({ code: DiffErrorCode.NOT_A_DIRECTORY });
  });

  it("stops when aborted", async () => {
    const d = await tmp();
    const upper = await makeTree(join(d, "u"), { a: "a" });
    await expect(diffDirectory(emptyTree(), upper, { signal: AbortSignal.abort() })).rejects.toThrow();
  });
});

async function touchRoot(p: string): Promise<void> {
  await utimes(p, T, T);
}

describe("diffTrees against a caller-given entry list", () => {
  const base = { mode: 0o644, size: 0, uid: 0, gid: 0, mtime: T.getTime() / 1000 };

  it("implies missing parents, resolves hard links, compares with Docker's rules", async () => {
    const d = await tmp();
    const upper = await makeTree(join(d, "u"), { "etc/passwd": "root", "usr/bin/tool": "12345", "usr/bin/tool2": "xx" });
    await chmod(join(upper, "usr/bin/tool"), 0o755);
    await utimes(join(upper, "usr/bin/tool"), T, T);
    const list: ListedEntry[] = [
      { path: "./etc/", type: "dir", ...base, mode: 0o755 },
      { path: "etc/passwd", type: "file", ...base, size: 4 },
      { path: "usr/bin/tool", type: "file", ...base, mode: 0o755, size: 5 }, // usr and usr/bin implied (0755, root, mtime 0)
      { path: "usr/bin/tool2", type: "hardlink", ...base, link: "/usr/bin/tool" }, // a link: the target's metadata (size 5)
      { path: "var/log/x", type: "file", ...base, size: 1 },
    ];
    const changes = await diffDirectory(entriesTree(list), upper);
    expect(summary(changes)).toEqual(["C usr", "C usr/bin", "C usr/bin/tool2", "D var"]);
    const tool2 = changes.find((c) => c.path === "usr/bin/tool2")!;
    expect(tool2.lower).toMatchObject({ type: "file", size: 5, mode: 0o755 });
  });

  it("compares contents by digest when asked", async () => {
    const d = await tmp();
    const upper = await makeTree(join(d, "u"), { a: "same", b: "diff" });
    const list: ListedEntry[] = [
      { path: "a", type: "file", ...base, size: 4, digest: sha256(new TextEncoder().encode("same")) },
      { path: "b", type: "file", ...base, size: 4, digest: sha256(new TextEncoder().encode("DIFF")) },
    ];
    expect(summary(await diffDirectory(entriesTree(list), upper))).toEqual([]);
    expect(summary(await diffDirectory(entriesTree(list), upper, { compareContent: true }))).toEqual(["C b"]);
  });

  it("asks the caller whether contents agree when it says how (sameContent)", async () => {
    const lower = entriesTree([{ path: "a", type: "file", ...base, size: 1 }, { path: "b", type: "file", ...base, size: 1 }]);
    const upper = entriesTree([{ path: "a", type: "file", ...base, size: 1 }, { path: "b", type: "file", ...base, size: 1 }]);
    expect(summary(await diffTrees(lower, upper, { compareContent: true, sameContent: (p) => p !== "b" }))).toEqual(["C b"]);
    expect(summary(await diffTrees(lower, upper, { sameContent: () => false }))).toEqual([]); // only with compareContent
  });

  it("keepMissingSpecial: devices and fifos an unprivileged unpack could not make are not removals", async () => {
    const dev = { ...base, mode: 0o755, type: "dir" as const };
    const lower = entriesTree([
      { path: "dev", ...dev },
      { path: "dev/null", type: "char", ...base, mode: 0o666, rdev: 259 },
      { path: "dev/pipe", type: "fifo", ...base },
      { path: "dev/gone", type: "file", ...base },
    ]);
    const upper = entriesTree([{ path: "dev", ...dev }]);
    expect(summary(await diffTrees(lower, upper))).toEqual(["C dev (opaque)", "D dev/gone", "D dev/null", "D dev/pipe"]);
    // the file is still a removal; dev is not opaque (its special files remain)
    const kept = await diffTrees(lower, upper, { keepMissingSpecial: true });
    expect(summary(kept)).toEqual(["C dev", "D dev/gone"]);
    expect(kept[0]!.opaque).toBeUndefined();
  });

  it("refuses duplicates, .. and paths under files", () => {
    const f = { type: "file" as const, ...base };
    expect(() => entriesTree([{ path: "a", ...f }, { path: "./a", ...f }])).toThrow(expect.objectContaining({ code: DiffErrorCode.INVALID_TREE_ENTRY }));
    expect(() => entriesTree([{ path: "a/../../etc", ...f }])).toThrow(expect.objectContaining({ code: DiffErrorCode.INVALID_TREE_ENTRY }));
    expect(() => entriesTree([{ path: "a", ...f }, { path: "a/b", ...f }])).toThrow(expect.objectContaining({ code: DiffErrorCode.INVALID_TREE_ENTRY }));
    expect(() => entriesTree([{ path: "l", type: "hardlink", ...base, link: "nowhere" }])).toThrow(expect.objectContaining({ code: DiffErrorCode.INVALID_TREE_ENTRY }));
  });

  it("two entry lists diff like two directories", async () => {
    const lower = entriesTree([
      { path: "a", type: "file", ...base, size: 1 },
      { path: "d/x", type: "file", ...base, size: 1 },
    ]);
    const upper = entriesTree([
      { path: "a", type: "file", ...base, size: 2 },
      { path: "n", type: "symlink", ...base, link: "a" },
    ]);
    expect(summary(await diffTrees(lower, upper))).toEqual(["C a", "D d", "A n"]);
  });
});

describe("compareNames", () => {
  it("is UTF-8 byte order, also for characters beyond U+FFFF", () => {
    const names = ["b", "a", "Z", "é", "\uFF5E", "😀", "a-b", "a/b", "a.b", ""];
    const bytes = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...names].sort(compareNames)).toEqual(bytes);
    expect(compareNames("\uFF5E", "😀")).toBeLessThan(0); // UTF-16 order would say the opposite
  });
});

describe("sameTime (Docker's sameFsTime)", () => {
  it("whole seconds match any sub-second part of the same second", () => {
    expect(sameTime(100, 100.5)).toBe(true);
    expect(sameTime(100.25, 100.5)).toBe(false);
    expect(sameTime(100.5, 100.5)).toBe(true);
    expect(sameTime(100, 101)).toBe(false);
  });

  it("with an mtime tolerance (a copy that kept milliseconds only), times closer than it are the same", () => {
    const file = { type: "file" as const, mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 1700000000.1239 };
    const copied = { ...file, mtime: 1700000000.123 };
    expect(sameEntry(file, copied)).toBe(false);
    expect(sameEntry(file, copied, 0.001)).toBe(true);
    expect(sameEntry(file, { ...file, mtime: 1700000000.126 }, 0.001)).toBe(false);
  });
});

describe("identity mapping", () => {
  it("maps both ways and refuses what it does not cover", () => {
    const m = IdentityMapping.parse(["0:100000:65536"], ["0:200000:65536"]);
    expect(m.toHost({ uid: 0, gid: 0 })).toEqual({ uid: 100000, gid: 200000 });
    expect(m.toContainer({ uid: 100033, gid: 200044 })).toEqual({ uid: 33, gid: 44 });
    expect(m.rootPair()).toEqual({ uid: 100000, gid: 200000 });
    expect(() => m.toContainer({ uid: 5, gid: 200000 })).toThrow(expect.objectContaining({ code: DiffErrorCode.UNMAPPED_ID }));
    expect(new IdentityMapping().toContainer({ uid: 7, gid: 8 })).toEqual({ uid: 7, gid: 8 });
    expect(() => IdentityMapping.parse(["0:1:10", "5:100:10"])).toThrow(expect.objectContaining({ code: DiffErrorCode.INVALID_ID_MAPPING }));
    expect(() => IdentityMapping.parse(["0:1"])).toThrow(expect.objectContaining({ code: DiffErrorCode.INVALID_ID_MAPPING }));
  });

  it.skipIf(process.getuid?.() !== 0)("a diff with a mapping sees container owners, so a rootless tree matches a root-owned lower", async () => {
    const d = await tmp();
    const upper = await makeTree(join(d, "u"), { "a": "a", "b": "b" });
    await chown(join(upper, "a"), 100000, 100000);
    await chown(join(upper, "b"), 100033, 100033);
    await chown(upper, 100000, 100000);
    const base = { mode: 0o644, size: 1, mtime: T.getTime() / 1000 };
    const lower = entriesTree([
      { path: "a", type: "file", uid: 0, gid: 0, ...base },
      { path: "b", type: "file", uid: 0, gid: 0, ...base },
    ]);
    const idMapping = IdentityMapping.parse(["0:100000:65536"]);
    const changes = await diffDirectory(lower, upper, { idMapping });
    expect(summary(changes)).toEqual(["C b"]);
    expect(changes[0]!.entry).toMatchObject({ uid: 33, gid: 33 });
    const tar = await readTar(writeLayer(directoryTree(upper), changes));
    expect(tar.map((e) => [e.name, e.uid, e.gid])).toEqual([["b", 33, 33]]);
    await chown(join(upper, "a"), 5, 5);
    await expect(diffDirectory(lower, upper, { idMapping })).rejects.toMatchObject({ code: DiffErrorCode.UNMAPPED_ID });
  });
});

describe("writeLayer", () => {
  it("writes hard links inside the layer as hard links (the first name holds the data)", async () => {
    const d = await tmp();
    const upper = await makeTree(join(d, "u"), { "b/data": "shared bytes", "c": "solo" });
    await link(join(upper, "b/data"), join(upper, "a-link"));
    await link(join(upper, "b/data"), join(upper, "z-link"));
    const tar = await readTar(writeLayer(directoryTree(upper), await diffDirectory(emptyTree(), upper)));
    expect(tar.map((e) => [e.name, e.type, e.linkname, e.body])).toEqual([
      ["a-link", "file", null, "shared bytes"],
      ["b/", "directory", null, ""],
      ["b/data", "link", "a-link", ""],
      ["c", "file", null, "solo"],
      ["z-link", "link", "a-link", ""],
    ]);
  });

  it("keeps symlinks, modes, owners; fixed mtimes unless asked; one owner when asked", async () => {
    const d = await tmp();
    const upper = await makeTree(join(d, "u"), { "bin/sh": "#!", "ln": { link: "../nowhere/at/all" }, "secret": "s", "empty": "" });
    await chmod(join(upper, "bin/sh"), 0o4755);
    await chmod(join(upper, "secret"), 0o000);
    execFileSync("mkfifo", [join(upper, "fifo")]);
    await touchAll(upper);
    const changes = await diffDirectory(emptyTree(), upper);
    const tar = await readTar(writeLayer(directoryTree(upper), changes, { mtime: 1_700_000_000 }));
    const by = new Map(tar.map((e) => [e.name, e]));
    expect(by.get("bin/sh")).toMatchObject({ type: "file", mode: 0o4755, mtime: 1_700_000_000, body: "#!" });
    expect(by.get("secret")).toMatchObject({ mode: 0 });
    expect(by.get("ln")).toMatchObject({ type: "symlink", linkname: "../nowhere/at/all" });
    expect(by.get("fifo")).toMatchObject({ type: "fifo" });
    expect(by.get("empty")).toMatchObject({ type: "file", size: 0 });
    const kept = await readTar(writeLayer(directoryTree(upper), changes, { keepMtimes: true }));
    expect(kept.every((e) => e.mtime === T.getTime() / 1000)).toBe(true);
    const owned = await readTar(writeLayer(directoryTree(upper), changes, { owner: { uid: 1, gid: 2 } }));
    expect(owned.every((e) => e.uid === 1 && e.gid === 2)).toBe(true);
  });

  it("unicode and long names (PAX or ustar prefix) round-trip", async () => {
    const d = await tmp();
    const long = `${"long-directory-name-".repeat(6)}/${"x".repeat(120)}`;
    const spec = { "héllo wörld/日本語.txt": "u", [long]: "l", "ünï/link": { link: `../${"t".repeat(150)}` } };
    const upper = await makeTree(join(d, "u"), spec);
    const tar = await readTar(writeLayer(directoryTree(upper), await diffDirectory(emptyTree(), upper)));
    const names = tar.map((e) => e.name);
    expect(names).toContain("héllo wörld/日本語.txt");
    expect(names).toContain(long);
    expect(tar.find((e) => e.name === "ünï/link")?.linkname).toBe(`../${"t".repeat(150)}`);
    expect(tar.find((e) => e.name === long)?.body).toBe("l");
  });

  it("is deterministic: the same tree gives the same bytes, whatever the files' mtimes and the run", async () => {
    const d = await tmp();
    const spec = { "a/b/c": "c", "a/d": "d", "e": { link: "a/d" }, "f": "ffff" };
    const one = await makeTree(join(d, "one"), spec);
    const two = await makeTree(join(d, "two"), spec);
    await utimes(join(two, "f"), new Date(), new Date());
    const digestOf = async (root: string) => sha256(await tarBytes(writeLayer(directoryTree(root), await diffDirectory(emptyTree(), root))));
    const first = await digestOf(one);
    expect(await digestOf(one)).toBe(first);
    expect(await digestOf(two)).toBe(first);
    // a diff layer too
    const lower = await makeTree(join(d, "lower"), { x: "x", "y/z": "z" });
    const upper = copyTree(lower, join(d, "upper"));
    await rm(join(upper, "x"));
    await writeFile(join(upper, "y/new"), "n");
    const diffDigest = async () => sha256(await tarBytes(writeLayer(directoryTree(upper), await diffDirectory(directoryTree(lower), upper))));
    expect(await diffDigest()).toBe(await diffDigest());
  });

  it("fails when a file changed size after the diff", async () => {
    const d = await tmp();
    const upper = await makeTree(join(d, "u"), { f: "0123456789" });
    const changes = await diffDirectory(emptyTree(), upper);
    await truncate(join(upper, "f"), 3);
    await expect(tarBytes(writeLayer(directoryTree(upper), changes))).rejects.toMatchObject({ code: DiffErrorCode.NO_CONTENT });
  });

  it("streams: memory stays flat for a large file", async () => {
    const d = await tmp();
    const upper = join(d, "u");
    await mkdir(upper);
    await writeFile(join(upper, "big"), "");
    await truncate(join(upper, "big"), 512 << 20); // sparse: 512 MiB of zeros, no disk
    const changes = await diffDirectory(emptyTree(), upper);
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    let bytes = 0;
    for await (const c of writeLayer(directoryTree(upper), changes)) {
      bytes += c.length;
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
    }
    expect(bytes).toBeGreaterThan(512 << 20);
    expect(peak).toBeLessThan(64 << 20);
  });

  it("stops on abort", async () => {
    const d = await tmp();
    const upper = await makeTree(join(d, "u"), { a: "a" });
    const changes = await diffDirectory(emptyTree(), upper);
    await expect(tarBytes(writeLayer(directoryTree(upper), changes, { signal: AbortSignal.abort() }))).rejects.toThrow();
  });
});

