import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { type Digest, sha256 } from "@berth/digest";

export { makeTar } from "../src/tar-fixture.js";

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
