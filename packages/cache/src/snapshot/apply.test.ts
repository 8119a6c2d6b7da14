import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listTree, type TarEntry, tarOf } from "../../test/snapshot-util.js";
import { diffDirectory, entriesTree, IdentityMapping } from "../diff/index.js";
import { applyLayer } from "./apply.js";

let base: string;
let root: string;
let outside: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "berth-apply-"));
  root = join(base, "root");
  outside = join(base, "outside");
  await mkdir(root);
  await mkdir(outside);
  await writeFile(join(outside, "secret"), "keep me");
});
afterEach(() => rm(base, { recursive: true, force: true }));

const apply = async (entries: TarEntry[], opts = {}) => applyLayer(root, [await tarOf(entries)], opts);
const isRoot = process.getuid?.() === 0;

describe("applyLayer: a plain layer", () => {
  it("creates directories, files, symlinks and hard links with their modes and mtimes", async () => {
    const t = new Date(1_600_000_000_000);
    const res = await apply([
      { name: "./etc/", type: "directory", mode: 0o750, mtime: t },
      { name: "./etc/passwd", body: "root:x:0:0", mode: 0o600, mtime: t },
      { name: "./bin/", type: "directory" },
      { name: "./bin/su", body: "#!", mode: 0o4755 },
      { name: "./bin/sh", type: "symlink", linkname: "/bin/busybox" },
      { name: "./bin/dangling", type: "symlink", linkname: "../nowhere/at/all" },
      { name: "./bin/su2", type: "link", linkname: "./bin/su" },
    ]);
    expect(res).toMatchObject({ entries: 7, bytes: 12, whiteouts: 0, skippedCount: 0 });
    expect(await listTree(root)).toEqual([
      "bin d 755",
      "bin/dangling l 777 -> ../nowhere/at/all",
      "bin/sh l 777 -> /bin/busybox",
      `bin/su f 4755 2 ${hash("#!")}`,
      `bin/su2 f 4755 2 ${hash("#!")}`,
      "etc d 750",
      `etc/passwd f 600 10 ${hash("root:x:0:0")}`,
    ]);
    const [a, b] = [await stat(join(root, "bin/su")), await stat(join(root, "bin/su2"))];
    expect(a.ino).toBe(b.ino);
    // directory mtimes are set after their contents were written
    expect((await stat(join(root, "etc"))).mtimeMs).toBe(t.getTime());
    expect((await stat(join(root, "etc/passwd"))).mtimeMs).toBe(t.getTime());
    expect((await lstat(join(root, "bin/sh"))).mtimeMs).toBe(0);
  });

  it("creates missing parent directories", async () => {
    await apply([{ name: "a/b/c/file", body: "x" }]);
    expect(await listTree(root)).toEqual(["a d 755", "a/b d 755", "a/b/c d 755", `a/b/c/file f 644 1 ${hash("x")}`]);
  });

  it("reads gzip and zstd layers, and Node streams", async () => {
    const tar = await tarOf([{ name: "f", body: "compressed" }]);
    await applyLayer(root, Readable.from([gzipSync(tar)]));
    expect(await readFile(join(root, "f"), "utf8")).toBe("compressed");
    const zst = execFileSync("zstd", ["-c", "-q"], { input: await tarOf([{ name: "g", body: "zstd" }]) });
    await applyLayer(root, [new Uint8Array(zst)]);
    expect(await readFile(join(root, "g"), "utf8")).toBe("zstd");
  });

  it("streams a large file in chunks", async () => {
    const size = 24 << 20;
    const tar = await tarOf([{ name: "big", body: Buffer.alloc(size, 7) }]);
    const chunks = function* () {
      for (let i = 0; i < tar.length; i += 64 * 1024) yield tar.subarray(i, i + 64 * 1024);
    };
    const res = await applyLayer(root, chunks());
    expect(res.bytes).toBe(size);
    expect((await stat(join(root, "big"))).size).toBe(size);
  });

  it.runIf(isRoot)("keeps owners and creates device nodes and fifos as root", async () => {
    const res = await apply([
      { name: "owned", body: "x", uid: 1234, gid: 5678, mode: 0o2755 },
      { name: "dev/", type: "directory" },
      { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/fifo", type: "fifo", mode: 0o600 },
    ]);
    expect(res.skippedCount).toBe(0);
    const st = await stat(join(root, "owned"));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1234, 5678, 0o2755]);
    const dev = await lstat(join(root, "dev/null"));
    expect(dev.isCharacterDevice()).toBe(true);
    expect(dev.rdev).toBe((1 << 8) | 3);
    expect((await lstat(join(root, "dev/fifo"))).isFIFO()).toBe(true);
  });

  it("skips and reports special files and owners when asked not to create them", async () => {
    const res = await apply(
      [
        { name: "owned", body: "x", uid: 1234, gid: 5678 },
        { name: "null", type: "character-device", devmajor: 1, devminor: 3 },
        { name: "fifo", type: "fifo" },
      ],
      { owners: false, specialFiles: false },
    );
    expect(res.ownersNotApplied).toBe(1);
    expect(res.skipped.map((s) => [s.path, s.type])).toEqual([
      ["null", "character-device"],
      ["fifo", "fifo"],
    ]);
    expect(await listTree(root)).toEqual([`owned f 644 1 ${hash("x")}`]);
    expect((await stat(join(root, "owned"))).uid).toBe(process.getuid?.());
  });

  it.skipIf(!isRoot)("with an identity mapping, chowns to the host owners and a diff with the same mapping sees no change", async () => {
    const idMapping = IdentityMapping.parse(["0:100000:65536"], ["0:200000:65536"]);
    const entries: TarEntry[] = [
      { name: "srv/", type: "directory", uid: 33, gid: 33 },
      { name: "srv/index.html", body: "hi", uid: 33, gid: 34 },
      { name: "link", type: "symlink", linkname: "srv", uid: 1000, gid: 1000 },
      { name: "plain", body: "x" },
    ];
    await apply(entries, { idMapping });
    const owner = async (p: string) => {
      const st = await lstat(join(root, p));
      return `${st.uid}:${st.gid}`;
    };
    expect([await owner("srv"), await owner("srv/index.html"), await owner("link"), await owner("plain")]).toEqual(["100033:200033", "100033:200034", "101000:201000", "100000:200000"]);
    const lower = entriesTree([
      { path: "srv", type: "dir", mode: 0o755, size: 0, uid: 33, gid: 33, mtime: 0 },
      { path: "srv/index.html", type: "file", mode: 0o644, size: 2, uid: 33, gid: 34, mtime: 0 },
      { path: "link", type: "symlink", mode: 0o777, size: 0, uid: 1000, gid: 1000, mtime: 0, link: "srv" },
      { path: "plain", type: "file", mode: 0o644, size: 1, uid: 0, gid: 0, mtime: 0 },
    ]);
    expect(await diffDirectory(lower, root, { idMapping })).toEqual([]);
    // an owner outside the mapping is refused
    await rm(root, { recursive: true });
    await mkdir(root);
    await expect(apply([{ name: "far", body: "x", uid: 70_000 }], { idMapping })).rejects.toMatchObject({ code: "ERR_UNMAPPED_ID" });
  });

  it("counts extended attributes it cannot set", async () => {
    const res = await apply([{ name: "ping", body: "x", pax: { "SCHILY.xattr.security.capability": "cap" } }]);
    expect(res.xattrsSkipped).toBe(1);
  });
});

describe("applyLayer: layers over layers", () => {
  it("whiteouts remove the entry below, files and whole directories", async () => {
    await apply([
      { name: "a/b", body: "b" },
      { name: "a/c", body: "c" },
      { name: "d/e/f", body: "f" },
      { name: "top", body: "t" },
    ]);
    const res = await apply([
      { name: "a/.wh.b", type: "file", mode: 0 },
      { name: ".wh.d", mode: 0 },
      { name: ".wh.missing", mode: 0 },
    ]);
    expect(res.whiteouts).toBe(3);
    expect(await listTree(root)).toEqual(["a d 755", `a/c f 644 1 ${hash("c")}`, `top f 644 1 ${hash("t")}`]);
  });

  it("an opaque directory keeps only what this layer put in it", async () => {
    await apply([
      { name: "a/", type: "directory" },
      { name: "a/x", body: "x" },
      { name: "a/y/z", body: "z" },
      { name: "b", body: "b" },
    ]);
    await apply([
      { name: "a/", type: "directory", mode: 0o700 },
      { name: "a/new", body: "new" },
      { name: "a/.wh..wh..opq", mode: 0 },
      { name: "a/later", body: "later" },
    ]);
    expect(await listTree(root)).toEqual([
      "a d 700",
      `a/later f 644 5 ${hash("later")}`,
      `a/new f 644 3 ${hash("new")}`,
      `b f 644 1 ${hash("b")}`,
    ]);
  });

  it("replaces a directory by a file, a file by a directory, and a file by a symlink", async () => {
    await apply([
      { name: "d/inner", body: "i" },
      { name: "f", body: "f" },
      { name: "s", body: "s" },
    ]);
    await apply([
      { name: "d", body: "now a file" },
      { name: "f/", type: "directory" },
      { name: "f/child", body: "c" },
      { name: "s", type: "symlink", linkname: "f" },
    ]);
    expect(await listTree(root)).toEqual([`d f 644 10 ${hash("now a file")}`, "f d 755", `f/child f 644 1 ${hash("c")}`, "s l 777 -> f"]);
  });

  it("a hard link may point at an entry of a lower layer", async () => {
    await apply([{ name: "usr/bin/perl", body: "perl", mode: 0o755 }]);
    await apply([{ name: "usr/bin/perl5", type: "link", linkname: "usr/bin/perl" }]);
    expect((await stat(join(root, "usr/bin/perl5"))).ino).toBe((await stat(join(root, "usr/bin/perl"))).ino);
  });

  it("a later entry of the same name wins", async () => {
    await apply([
      { name: "f", body: "first" },
      { name: "f", body: "second" },
    ]);
    expect(await readFile(join(root, "f"), "utf8")).toBe("second");
  });
});

describe("applyLayer: hostile layers write nothing outside the directory", () => {
  const outsideBefore = ["secret f 644 7 " + hash("keep me")];
  const refused = async (entries: TarEntry[], code: string, prep?: () => Promise<void>) => {
    await prep?.();
    await expect(apply(entries)).rejects.toMatchObject({ code });
    const now = await listTree(outside);
    expect(now.map((l) => l.replace(/ \d+ /, " ").replace(/ 6\d\d /, " 644 "))).toEqual(outsideBefore.map((l) => l.replace(/ \d+ /, " ")));
    expect(await readFile(join(outside, "secret"), "utf8")).toBe("keep me");
    expect((await stat(join(outside, "secret"))).nlink).toBe(1);
  };

  it("a symlink, then a write through it", async () => {
    await refused(
      [
        { name: "evil", type: "symlink", linkname: outside },
        { name: "evil/pwned", body: "x" },
      ],
      "ERR_UNSAFE_LINK",
    );
    await refused([{ name: "evil/secret", body: "overwritten" }], "ERR_UNSAFE_LINK");
  });

  it("a relative symlink climbing out, then a directory and a file through it", async () => {
    await refused(
      [
        { name: "up", type: "symlink", linkname: "../outside" },
        { name: "up/dir/", type: "directory" },
        { name: "up/dir/file", body: "x" },
      ],
      "ERR_UNSAFE_LINK",
    );
  });

  it("a symlink from a lower layer, written through by the next", async () => {
    await apply([{ name: "lib", type: "symlink", linkname: outside }]);
    await refused([{ name: "lib/x.so", body: "x" }], "ERR_UNSAFE_LINK");
  });

  it("'..' in a name", async () => {
    await refused([{ name: "../outside/pwned", body: "x" }], "ERR_UNSAFE_PATH");
    await refused([{ name: "a/../../outside/pwned", body: "x" }], "ERR_UNSAFE_PATH");
  });

  it("an absolute name", async () => {
    await refused([{ name: join(outside, "pwned"), body: "x" }], "ERR_UNSAFE_PATH");
  });

  it("a hard link to outside", async () => {
    await refused([{ name: "hl", type: "link", linkname: "../outside/secret" }], "ERR_UNSAFE_PATH");
    await refused([{ name: "hl", type: "link", linkname: join(outside, "secret") }], "ERR_UNSAFE_PATH");
    await refused(
      [
        { name: "evil", type: "symlink", linkname: outside },
        { name: "hl", type: "link", linkname: "evil/secret" },
      ],
      "ERR_UNSAFE_LINK",
    );
  });

  it("a hard link to nothing or to a directory", async () => {
    await expect(apply([{ name: "hl", type: "link", linkname: "missing" }])).rejects.toMatchObject({ code: "ERR_HARDLINK_TARGET" });
    await expect(apply([{ name: "d/", type: "directory" }, { name: "hl", type: "link", linkname: "d" }])).rejects.toMatchObject({
      code: "ERR_HARDLINK_TARGET",
    });
  });

  it("a whiteout of '..' or '.'", async () => {
    await mkdir(join(root, "sub"));
    await refused([{ name: "sub/.wh..", mode: 0 }], "ERR_UNSAFE_PATH");
    await refused([{ name: ".wh..", mode: 0 }], "ERR_UNSAFE_PATH");
    await refused([{ name: "sub/.wh..", mode: 0 }], "ERR_UNSAFE_PATH");
    expect(await listTree(root)).toEqual(["sub d 755"]);
  });

  it("a whiteout or an opaque marker through a symlink", async () => {
    await symlink(outside, join(root, "evil"));
    await refused([{ name: "evil/.wh.secret", mode: 0 }], "ERR_UNSAFE_LINK");
    await refused([{ name: "evil/.wh..wh..opq", mode: 0 }], "ERR_UNSAFE_LINK");
    expect(await readlink(join(root, "evil"))).toBe(outside);
  });

  it("a symlink replacing a directory that the layer then writes into", async () => {
    await refused(
      [
        { name: "d/", type: "directory" },
        { name: "d", type: "symlink", linkname: outside },
        { name: "d/pwned", body: "x" },
      ],
      "ERR_UNSAFE_LINK",
    );
  });
});

describe("applyLayer: broken input", () => {
  it("bytes that are not a tar", async () => {
    await expect(applyLayer(root, [Buffer.alloc(1024, 0x41)])).rejects.toMatchObject({ code: "ERR_INVALID_TAR" });
  });
  it("a tar cut short", async () => {
    const tar = await tarOf([{ name: "f", body: Buffer.alloc(4096, 1) }]);
    await expect(applyLayer(root, [tar.subarray(0, 2000)])).rejects.toMatchObject({ code: "ERR_INVALID_TAR" });
  });
  it("corrupt gzip", async () => {
    const gz = gzipSync(await tarOf([{ name: "f", body: "x" }]));
    gz[gz.length - 6]! ^= 0xff;
    await expect(applyLayer(root, [gz])).rejects.toMatchObject({ code: "ERR_CORRUPT_DATA" });
  });
  it("a target that is not a directory", async () => {
    await expect(applyLayer(join(base, "nope"), [await tarOf([])])).rejects.toMatchObject({ code: "ERR_TARGET_NOT_FOUND" });
  });
});

function hash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 16);
}
