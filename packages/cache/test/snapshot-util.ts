/**
 * Test helpers for the snapshot code (not exported from the package): tars
 * built entry by entry with tar-stream (hostile names included), and a
 * recursive listing of a tree to compare against.
 * @module
 */
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { type Header, pack } from "tar-stream";

/** One tar entry: a tar-stream header and, for files, the body. */
export type TarEntry = Partial<Header> & { name: string; body?: string | Uint8Array };

/** The bytes of a tar holding `entries` in order (mtime 0, mode 0644/0755 unless given). */
export async function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on("end", resolve);
    p.on("error", reject);
  });
  for (const { body, ...h } of entries) {
    const buf = body === undefined ? undefined : Buffer.from(body);
    const type = h.type ?? "file";
    const header = { ...h, type, mtime: h.mtime ?? new Date(0), mode: h.mode ?? (type === "directory" ? 0o755 : 0o644), uid: h.uid ?? 0, gid: h.gid ?? 0 } as Header;
    if (buf) header.size = buf.length;
    await new Promise<void>((resolve, reject) => {
      p.entry(header, buf ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** One line per entry under `root` (sorted): path, type, mode, size, link target, content hash, and owners when asked. */
export async function listTree(root: string, opts: { owners?: boolean; mtimes?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  async function visit(dir: string, rel: string): Promise<void> {
    for (const name of (await readdir(dir)).sort()) {
      const abs = `${dir}/${name}`;
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(abs);
      const type = st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : st.isFile() ? "f" : st.isFIFO() ? "p" : st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : "?";
      let line = `${r} ${type} ${(st.mode & 0o7777).toString(8)}`;
      if (type === "f") line += ` ${st.size} ${createHash("sha256").update(await readFile(abs)).digest("hex").slice(0, 16)}`;
      if (type === "l") line += ` -> ${await readlink(abs)}`;
      if (type === "c" || type === "b") line += ` ${st.rdev}`;
      if (opts.owners) line += ` ${st.uid}:${st.gid}`;
      if (opts.mtimes && type !== "d") line += ` @${Math.floor(st.mtimeMs / 1000)}`;
      out.push(line);
      if (type === "d") await visit(abs, r);
    }
  }
  await visit(root, "");
  return out;
}
