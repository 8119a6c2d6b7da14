/**
 * Extended attributes on extraction: PAX `SCHILY.xattr.*` records set on the
 * files, directories and hard links a layer makes (with Debian's `setfattr`),
 * read back with `getfattr`; what cannot be set is counted with a reason.
 * Needs setfattr/getfattr (the `attr` package; a missing one fails under
 * BERTH_REQUIRE_PEERS=1) and a file system with user xattrs (ext4, XFS,
 * btrfs, tmpfs). `security.capability` only as root. The rootless case runs
 * a worker as nobody when the test runs as root.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { requirePeer } from "@berth/peers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ApplyResult, applyLayer } from "../src/snapshot/apply.js";
import { tarOf } from "./snapshot-util.js";

const setfattr = await requirePeer("setfattr");
const getfattr = await requirePeer("getfattr");
const isRoot = process.getuid?.() === 0;
const here = dirname(fileURLToPath(import.meta.url));

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-xattr-"));
});
afterEach(() => rm(root, { recursive: true, force: true }));

/** name → hex value of every attribute of `path` (links not followed). */
function xattrsOf(path: string): Record<string, string> {
  const out = execFileSync(getfattr!, ["-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", path], { encoding: "utf8" });
  const attrs: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m) attrs[m[1]!] = m[2]!;
  }
  return attrs;
}

const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");
// cap_net_raw, permitted and effective (VFS_CAP_REVISION_2): every byte below 0x80, so valid UTF-8
const CAP = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

describe.skipIf(!setfattr || !getfattr)("applyLayer: extended attributes", () => {
  it("sets them on files, directories and hard links, with odd names and values", async () => {
    const tar = await tarOf([
      { name: "dir/", type: "directory", mode: 0o555, pax: { "SCHILY.xattr.user.dir": "d" } },
      { name: "dir/file name\nwith newline", body: "x", mode: 0o444, pax: { "SCHILY.xattr.user.note": "hello=world\n\\", "SCHILY.xattr.user.empty": "" } },
      { name: "dir/hard", type: "link", linkname: "dir/file name\nwith newline" },
      { name: "ping", body: "elf", mode: 0o755, pax: isRoot ? { "SCHILY.xattr.security.capability": CAP } : { "SCHILY.xattr.user.cap": CAP } },
    ]);
    const res = await applyLayer(root, [tar]);
    expect(res).toMatchObject({ xattrs: 4, xattrsSkipped: 0, xattrNotes: [] });
    expect(xattrsOf(join(root, "dir"))).toEqual({ "user.dir": hex("d") });
    const file = xattrsOf(join(root, "dir/file name\nwith newline"));
    expect(file).toEqual({ "user.note": hex("hello=world\n\\"), "user.empty": "" });
    expect(xattrsOf(join(root, "dir/hard"))).toEqual(file);
    expect(xattrsOf(join(root, "ping"))).toEqual(isRoot ? { "security.capability": hex(CAP) } : { "user.cap": hex(CAP) });
  });

  it("counts what it cannot set, and says why", async () => {
    // a value tar-stream cannot read as UTF-8: the PAX record's bytes changed after packing
    const tar = await tarOf([
      { name: "bin", body: "x", pax: { "SCHILY.xattr.user.bin": "\u0080" } },
      { name: "gone", body: "x", pax: { "SCHILY.xattr.user.a": "1" } },
      { name: ".wh.gone", body: "" },
      { name: "./", type: "directory", pax: { "SCHILY.xattr.user.root": "r" } },
    ]);
    const at = tar.indexOf(Buffer.from("user.bin=\xc2\x80", "latin1"));
    expect(at).toBeGreaterThan(0);
    tar[at + "user.bin=".length] = 0xff;
    const res = await applyLayer(root, [tar]);
    expect(res.xattrs).toBe(0);
    expect(res.xattrsSkipped).toBe(3); // the unreadable value, the whited-out file's, the root's
    expect(res.xattrNotes.join("\n")).toMatch(/not valid UTF-8/);
    expect(xattrsOf(join(root, "bin"))).toEqual({});
  });
});

describe.skipIf(!setfattr || !getfattr)("without root: owners recorded in user.rootlesscontainers and read back", () => {
  it("records what it cannot chown, sets read-only files' modes after their attributes, and a commit's tree sees the image's owners", async (ctx) => {
    const tar = await tarOf([
      { name: "etc/", type: "directory" },
      { name: "etc/shadow", body: "s", mode: 0o640, gid: 42 },
      { name: "srv/", type: "directory", uid: 33, gid: 33, mode: 0o555 },
      { name: "srv/index.html", body: "<p>hi</p>", uid: 33, gid: 33, mode: 0o444 },
      { name: "plain", body: "root's" },
    ]);
    await writeFile(join(root, "layer.tar"), tar);
    const dir = join(root, "rootfs");
    await mkdir(dir);
    const worker = join(here, "workers/rootless-apply.ts");
    const node = [process.execPath, "--conditions=source", "--import", join(here, "../../layer-store/test/register-ts.mjs"), worker, dir, join(root, "layer.tar")];
    // as root, the worker runs as nobody (the temp directory handed to it), when nobody can read this checkout
    const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    if (isRoot) {
      try {
        execFileSync(asNobody[0]!, [...asNobody.slice(1), "test", "-r", worker], { stdio: "ignore" });
      } catch {
        console.warn(`rootless test skipped: user nobody cannot read ${worker} (a checkout under a private directory)`);
        ctx.skip();
      }
      execFileSync("chown", ["-R", "65534:65534", root]);
    }
    const argv = isRoot ? [...asNobody, ...node] : node;
    const out = JSON.parse(execFileSync(argv[0]!, argv.slice(1), { encoding: "utf8", env: { ...process.env, TMPDIR: root } })) as { uid: number; result: ApplyResult; entries: Record<string, string> };
    expect(out.uid).not.toBe(0);
    expect(out.result).toMatchObject({ ownersNotApplied: 3, ownersRecorded: 3, xattrsSkipped: 0 });
    expect(out.entries).toEqual({
      etc: "0:0 755",
      "etc/shadow": "0:42 640",
      srv: "33:33 555",
      "srv/index.html": "33:33 444",
      plain: "0:0 644",
    });
  });
});
