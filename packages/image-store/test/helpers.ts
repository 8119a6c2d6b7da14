import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { type Digest, sha256 } from "@berth/digest";

/** A minimal ustar archive (regular files only) ending in two zero blocks, like dockerd writes. */
export function makeTar(files: Record<string, string | Uint8Array>, mtime = 0): Uint8Array {
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const [name, content] of Object.entries(files)) {
    const data = typeof content === "string" ? enc.encode(content) : content;
    const h = new Uint8Array(512);
    const put = (off: number, len: number, s: string) => h.set(enc.encode(s).subarray(0, len), off);
    const octal = (off: number, len: number, n: number) => put(off, len, `${n.toString(8).padStart(len - 1, "0")}\0`);
    put(0, 100, name);
    octal(100, 8, 0o644);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, data.length);
    octal(136, 12, mtime);
    put(148, 8, "        ");
    put(156, 1, "0");
    put(257, 6, "ustar\0");
    put(263, 2, "00");
    let sum = 0;
    for (const b of h) sum += b;
    put(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
    blocks.push(h);
    const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
    padded.set(data);
    blocks.push(padded);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

/** gzip of bytes. */
export function gzip(b: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(b));
}

/** DiffID of an uncompressed tar. */
export function diffIdOf(tar: Uint8Array): Digest {
  return sha256(tar);
}

/** A Docker-style image config over the given DiffIDs. */
export function makeConfig(
  diffIds: string[],
  opts: { history?: Array<{ created_by?: string; empty_layer?: boolean }>; cmd?: string[]; created?: string; extra?: Record<string, unknown> } = {},
): Uint8Array {
  const history = opts.history ?? diffIds.map((_, i) => ({ created_by: `layer ${i}` }));
  const config = {
    architecture: "amd64",
    os: "linux",
    created: opts.created ?? "2024-01-01T00:00:00Z",
    config: { Cmd: opts.cmd ?? ["/bin/sh"], Env: ["PATH=/usr/bin:/bin"] },
    history: history.map((h) => ({ created: opts.created ?? "2024-01-01T00:00:00Z", ...h })),
    rootfs: { type: "layers", diff_ids: diffIds },
    ...opts.extra,
  };
  return new TextEncoder().encode(JSON.stringify(config));
}

/** A temporary directory removed by the returned cleanup. */
export async function tempRoot(prefix = "berth-image-store-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
