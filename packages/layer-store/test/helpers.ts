import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";

/** A fresh temporary directory; remove with the returned cleanup. */
export async function tempRoot(prefix = "berth-layer-"): Promise<{ root: string; cleanup(): Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), prefix));
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** A small but valid-looking "tar": one 512-byte header-ish block plus data, deterministic from the seed. */
export function fakeTar(seed: number, size = 2048): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0x7f; // never starts with gzip/zstd magic
  }
  return out;
}

/** gzip of bytes. */
export function gz(b: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(b));
}
