import { mkdtemp, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { mountReflinkFs } from "@berth/peers";
import { pack } from "tar-stream";
import { afterAll } from "vitest";

/** A real tar with the given files (deterministic: mtime 0). */
export async function makeTar(files: Record<string, string | Uint8Array>): Promise<Uint8Array> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on("end", resolve);
    p.on("error", reject);
  });
  for (const [name, content] of Object.entries(files)) {
    const buf = typeof content === "string" ? Buffer.from(content) : Buffer.from(content);
    p.entry({ name, size: buf.length, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, buf);
  }
  p.finalize();
  await done;
  return new Uint8Array(Buffer.concat(chunks));
}

/** A gzip'd tar. */
export async function makeTarGz(files: Record<string, string | Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(gzipSync(await makeTar(files)));
}

/** A temp directory removed by the returned cleanup. */
export async function tempDir(prefix = "berth-cache-"): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A loop-mounted XFS (reflinks) or btrfs for this file's tests, from
 * `@berth/peers`, unmounted and removed after them; `{ skipped }` (warned)
 * when it cannot be mounted here.
 */
export async function loopFs(type: "xfs" | "btrfs"): Promise<{ dir: string } | { skipped: string }> {
  const work = await tempDir();
  const fs = await mountReflinkFs(work.dir, { sizeMiB: 512, type });
  if ("skipped" in fs) console.warn(`${type} tests skipped: ${fs.skipped}`);
  afterAll(async () => {
    if (!("skipped" in fs)) await fs.unmount();
    await work.cleanup();
  });
  return fs;
}

/** Bytes in use on the file system holding `dir`. */
export async function usedBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return (s.blocks - s.bfree) * s.bsize;
}
