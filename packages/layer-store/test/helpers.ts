import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";

/** A fresh temporary directory; remove with the returned cleanup. */
export async function tempRoot(prefix = "berth-layer-"): Promise<{ root: string; cleanup(): Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), prefix));
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** gzip of bytes. */
export function gz(b: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(b));
}
