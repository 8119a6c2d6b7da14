import { promises as fsp } from "node:fs";
import path from "node:path";
import { isOwnerAlive, parseOwnerToken, readdirIfExists, TEMP_SUFFIX } from "./fsutil.js";
import type { StorePaths } from "./paths.js";

/** Something {@link cleanupStale} removed or would remove. */
export interface StaleFile {
  path: string;
  kind: "ingest" | "temp";
  /** Its size (a file; not a directory). */
  bytes?: number;
}

/** Owner token of an ingest file (`<pid>-<start>.<random>`) or a temp file (`<name>.<pid>-<start>.<random>.berth-tmp`). */
function ownerOf(name: string, kind: StaleFile["kind"]) {
  if (kind === "ingest") return parseOwnerToken(name.split(".")[0] ?? "");
  const parts = name.slice(0, -TEMP_SUFFIX.length).split(".");
  return parseOwnerToken(parts[parts.length - 2] ?? "");
}

/**
 * Find (and unless `dryRun`, remove) ingests and temporary files whose owner
 * process is gone, or that are older than `ingestMaxAgeMs` (default: never by
 * age). Files of live processes are in flight and never touched.
 */
export async function cleanupStale(
  paths: StorePaths,
  opts: { ingestMaxAgeMs?: number; dryRun?: boolean },
): Promise<StaleFile[]> {
  const found: StaleFile[] = [];
  const now = Date.now();
  const consider = async (dir: string, name: string, kind: StaleFile["kind"]) => {
    const file = path.join(dir, name);
    const owner = ownerOf(name, kind);
    let stale = owner === undefined || !isOwnerAlive(owner);
    const st = stale || opts.ingestMaxAgeMs !== undefined ? await fsp.stat(file).catch(() => undefined) : undefined;
    if (!stale && opts.ingestMaxAgeMs !== undefined) stale = st !== undefined && now - st.mtimeMs > opts.ingestMaxAgeMs;
    if (!stale) return;
    found.push({ path: file, kind, ...(st?.isFile() ? { bytes: st.size } : {}) });
    if (!opts.dryRun) await fsp.rm(file, { force: true, recursive: true });
  };
  for (const name of await readdirIfExists(paths.ingest)) await consider(paths.ingest, name, "ingest");
  for (const dir of [paths.root, paths.blobs, paths.layerRecords, paths.locks, paths.layers, paths.leases]) {
    for (const name of await readdirIfExists(dir)) if (name.endsWith(TEMP_SUFFIX)) await consider(dir, name, "temp");
  }
  return found;
}
