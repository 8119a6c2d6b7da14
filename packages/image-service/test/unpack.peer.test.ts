/**
 * `berth unpack` against the peers: umoci unpacks the same image from the
 * store (which is an OCI layout) and dockerd (vfs) exports a container made
 * from an image whose layers have whiteouts and opaque directories; the
 * trees must be the same (type, mode, size, content hash, link target,
 * owners as root). Skips without the peers, fails under BERTH_REQUIRE_PEERS=1.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { lstat, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { readRootlessOwners, ROOTLESS_XATTR } from "@berth/cache";
import { DockerClient } from "@berth/docker-archive";
import { openStore, type Store } from "@berth/image-store";
import { dockerSave, dockerd, filesImage, requirePeer } from "@berth/peers";
import { type Header, pack } from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageService } from "../src/index.js";

const peer = await dockerd();
const umoci = await requirePeer("umoci");
const getfattr = await requirePeer("getfattr");
const work = mkdtempSync(join(tmpdir(), "berth-unpack-peers-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const root = process.getuid?.() === 0;

/** One line per entry (sorted by path): type, mode, size and content hash, link target, rdev, owners as root. */
async function listing(dir: string, skip: (rel: string) => boolean = () => false): Promise<string[]> {
  const out: string[] = [];
  async function visit(abs: string, rel: string): Promise<void> {
    for (const name of (await readdir(abs)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const p = `${abs}/${name}`;
      const st = await lstat(p);
      const t = st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : st.isFile() ? "f" : st.isFIFO() ? "p" : st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : "?";
      let line = `${r} ${t} ${(st.mode & 0o7777).toString(8)}`;
      if (t === "f") line += ` ${st.size} ${createHash("sha256").update(await readFile(p)).digest("hex").slice(0, 16)}`;
      if (t === "l") line += ` -> ${await readlink(p)}`;
      if (t === "c" || t === "b") line += ` ${st.rdev}`;
      if (root) line += ` ${st.uid}:${st.gid}`;
      out.push(line);
      if (t === "d") await visit(p, r);
    }
  }
  await visit(dir, "");
  return out;
}

/** Hard-link groups (paths sharing an inode), for the regular files under `dir`. */
async function linkGroups(dir: string): Promise<string[][]> {
  const byIno = new Map<number, string[]>();
  async function visit(abs: string, rel: string): Promise<void> {
    for (const name of await readdir(abs)) {
      const st = await lstat(`${abs}/${name}`);
      const r = rel ? `${rel}/${name}` : name;
      if (st.isDirectory()) await visit(`${abs}/${name}`, r);
      else if (st.isFile() && st.nlink > 1) byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), r]);
    }
  }
  await visit(dir, "");
  return [...byIno.values()].map((g) => g.sort()).sort();
}

type Entry = Partial<Header> & { name: string; body?: string | Buffer };
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => p.on("end", () => resolve()));
  for (const { body, ...h } of entries) {
    const type = h.type ?? "file";
    const buf = Buffer.from(body ?? "");
    p.entry({ mtime: new Date(1_700_000_000_000), uid: 0, gid: 0, ...h, type, mode: h.mode ?? (type === "directory" ? 0o755 : 0o644), size: type === "file" ? buf.length : 0 } as Header, type === "file" ? buf : Buffer.alloc(0));
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe.skipIf(!peer || !umoci)("berth unpack = umoci unpack (dockerd-built image with whiteouts, links, a fifo)", () => {
  let store: Store;
  let svc: ImageService;
  const tag = "berth-fixture/files:1";
  beforeAll(async () => {
    const files = await filesImage(peer!);
    const archive = join(work, "files.tar");
    await dockerSave(peer!, files.tag, archive);
    store = await openStore({ root: join(work, "store") });
    svc = new ImageService(store);
    await svc.load(archive);
  });
  afterAll(() => store?.close());

  it("gives the same tree", async () => {
    const bundle = join(work, "bundle");
    execFileSync(umoci!, ["unpack", "--image", `${store.root}:docker.io/${tag}`, bundle], { stdio: "pipe" });
    const out = join(work, "berth-rootfs");
    const res = await svc.unpack(tag, out);
    expect(res.layers.length).toBeGreaterThanOrEqual(5);
    const theirs = await listing(join(bundle, "rootfs"));
    const ours = await listing(out);
    expect(ours.length).toBeGreaterThan(250); // busybox (~270 entries) and the fixture's files
    expect(ours).toEqual(theirs);
    expect(await linkGroups(out)).toEqual(await linkGroups(join(bundle, "rootfs")));
    // the fixture's deletions happened, its fifo and links are there
    expect(ours.some((l) => l.startsWith("bin/ls "))).toBe(false);
    expect(ours.some((l) => l.startsWith("data/to-delete.txt "))).toBe(false);
    expect(ours.some((l) => l.startsWith(`data/fifo ${root ? "p" : ""}`))).toBe(root);
    expect(ours).toContain(`data/link-dangling l 777 -> does-not-exist${root ? " 0:0" : ""}`);
  });
});

describe.skipIf(!umoci || !getfattr)("owners without root: user.rootlesscontainers as umoci --rootless writes it", () => {
  let store: Store;
  let svc: ImageService;
  const tag = "berth-test/rootless:1";
  beforeAll(async () => {
    store = await openStore({ root: join(work, "store-rootless") });
    svc = new ImageService(store);
    const tar = await tarOf([
      { name: "etc/", type: "directory" },
      { name: "etc/shadow", body: "root:*:1::::::\n", mode: 0o640, gid: 42 },
      { name: "srv/", type: "directory", uid: 33, gid: 33, mode: 0o750 },
      { name: "srv/index.html", body: "<p>hi</p>", uid: 33, gid: 33, mode: 0o444 },
      { name: "srv/big-ids", body: "x", uid: 100_000, gid: 200_000 },
      { name: "srv/hard", type: "link", linkname: "srv/index.html" },
      { name: "home/", type: "directory" },
      { name: "home/user/", type: "directory", uid: 1000, gid: 1000, mode: 0o700 },
      { name: "home/user/link", type: "symlink", linkname: "../../srv", uid: 1000, gid: 1000 },
      { name: "plain", body: "root's" },
    ]);
    await svc.build({ layers: [{ stream: (async function* () { yield gzipSync(tar); })(), name: "layer.tar" }], tags: [tag] });
  });
  afterAll(() => store?.close());

  it("records the owners it cannot apply as umoci does, and a commit of the tree restores them", async () => {
    const bundle = join(work, "rootless-bundle");
    execFileSync(umoci!, ["unpack", "--rootless", "--image", `${store.root}:docker.io/${tag}`, bundle], { stdio: "pipe" });
    const out = join(work, "rootless-berth");
    const res = await svc.unpack(tag, out, { owners: false });
    expect(res.ownersRecorded).toBe(5); // etc/shadow, srv, srv/index.html, srv/big-ids, home/user (srv/hard shares index.html's inode; not the symlink)
    const ours = await readRootlessOwners(out);
    expect(Object.fromEntries(ours)).toEqual({
      "etc/shadow": { gid: 42 }, // uid 0 is umoci's "as on disk" (root's, in a rootless tree)
      srv: { uid: 33, gid: 33 },
      "srv/index.html": { uid: 33, gid: 33 },
      "srv/hard": { uid: 33, gid: 33 },
      "srv/big-ids": { uid: 100_000, gid: 200_000 },
      "home/user": { uid: 1000, gid: 1000 },
    });
    expect(Object.fromEntries(await readRootlessOwners(join(bundle, "rootfs")))).toEqual(Object.fromEntries(ours));
    expect((await lstat(join(out, "srv/index.html"))).mode & 0o7777).toBe(0o444);
    // the same bytes as umoci's attribute
    const raw = (p: string) => execFileSync(getfattr!, ["-h", "--only-values", "-n", ROOTLESS_XATTR, p]);
    expect(raw(join(out, "srv/big-ids")).equals(raw(join(bundle, "rootfs/srv/big-ids")))).toBe(true);
    // committed back onto the image, either tree changes only the symlink owned by 1000 (Linux keeps
    // no user.* attribute on a link, so its owner is not recorded, as with umoci) and its parents
    for (const dir of [out, join(bundle, "rootfs")]) {
      const c = await svc.commit({ dir, base: tag, rootlessOwners: true });
      expect(c.counts).toEqual({ added: 0, changed: 3, removed: 0 }); // home, home/user, home/user/link
    }
    // an edit keeps the recorded owners of what it did not touch
    await writeFile(join(out, "srv/new"), "new");
    const c = await svc.commit({ dir: out, base: tag, rootlessOwners: true });
    expect(c.counts).toEqual({ added: 1, changed: 4, removed: 0 }); // srv/new, srv as its parent, and the three above
  });
});

describe.skipIf(!peer)("berth unpack = docker export of a new container (whiteouts and opaque directories)", () => {
  let store: Store;
  let svc: ImageService;
  const tag = `berth-test/whiteouts-${randomBytes(4).toString("hex")}:1`;
  beforeAll(async () => {
    store = await openStore({ root: join(work, "store-wo") });
    svc = new ImageService(store);
    const layer = (b: Buffer) => ({ stream: (async function* () { yield b; })(), name: "layer.tar" });
    await svc.build({
      layers: [
        layer(gzipSync(await tarOf([
          { name: "a/", type: "directory" },
          { name: "a/x", body: "x" },
          { name: "a/xl", type: "link", linkname: "a/x" },
          { name: "a/y/", type: "directory", mode: 0o750 },
          { name: "a/y/z", body: "z", uid: 1000, gid: 1000 },
          { name: "b/", type: "directory" },
          { name: "b/keep", body: "keep", mode: 0o600 },
          { name: "b/gone", body: "gone" },
          { name: "c/", type: "directory" },
          { name: "c/deep/", type: "directory" },
          { name: "c/deep/f", body: "f" },
          { name: "top", body: "top", mode: 0o4755 },
          { name: "s", type: "symlink", linkname: "a/x" },
        ]))),
        layer(await tarOf([
          { name: "a/", type: "directory", mode: 0o700 },
          { name: "a/new", body: "new" },
          { name: "a/.wh..wh..opq", mode: 0 },
          { name: "b/.wh.gone", mode: 0 },
          { name: ".wh.c", mode: 0 },
          { name: ".wh.top", mode: 0 },
          { name: "c2/", type: "directory" },
          { name: "c2/file", body: "c2" },
        ])),
        layer(await tarOf([
          { name: "c/", type: "directory", mode: 0o711 },
          { name: "c/again", body: "again" },
          { name: "a/.wh.new", mode: 0 },
          { name: "a/last", body: "last" },
          { name: "s", body: "now a file" },
        ])),
      ],
      tags: [tag],
    });
    await svc.pushToDaemon([tag], { client: new DockerClient({ host: peer!.host }) });
  });
  afterAll(async () => {
    await peer?.docker(["rmi", "-f", tag]);
    await store?.close();
  });

  it("gives the same tree", async () => {
    const name = `berth-unpack-${randomBytes(4).toString("hex")}`;
    await peer!.run(["create", "--name", name, tag, "/none"]);
    const exported = join(work, "export.tar");
    try {
      await peer!.run(["export", "-o", exported, name]);
    } finally {
      await peer!.docker(["rm", "-f", name]);
    }
    const theirs = join(work, "export");
    execFileSync("mkdir", ["-p", theirs]);
    execFileSync("tar", ["-C", theirs, "--numeric-owner", "-xpf", exported]);
    const out = join(work, "wo-rootfs");
    await svc.unpack(tag, out);
    // what the container's init layer adds (none of it is in the image)
    const init = (r: string) => [".dockerenv", "dev", "proc", "sys", "etc"].includes(r.split("/")[0]!);
    const ours = await listing(out);
    expect(ours).toEqual(await listing(theirs, init));
    expect(ours.map((l) => l.split(" ")[0])).toEqual(["a", "a/last", "b", "b/keep", "c", "c/again", "c2", "c2/file", "s"]);
  });
});
