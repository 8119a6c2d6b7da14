/**
 * The blob-info cache (skopeo's `blobinfocache`, BuildKit's BlobChainID
 * bookkeeping): which blob digests are known to be in which repository of
 * which registry, and which DiffID each compressed layer blob has — so a push
 * to a second repository mounts instead of uploading, and a push of a layer
 * whose DiffID was already compressed once reuses that blob.
 *
 * It lives in one small JSON file (`blob-info-cache.json`) under a directory
 * the caller gives, read once, updated in memory, and written by `flush()`:
 * merged with what another process may have written meanwhile, then replaced
 * atomically (temp file, fsync, rename). Losing an entry to a race costs a
 * HEAD or an upload, never correctness: every hint is checked against the
 * registry before it is trusted (HEAD, mount answer). Without a directory it
 * is an in-memory cache. Size is bounded: the oldest entries go first.
 * @module
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { type Compression, type Digest, isDigest } from "@berth/digest";

/** The cache file's name in its directory. */
export const BLOB_INFO_CACHE_FILE = "blob-info-cache.json";

/** Bounds of the cache. */
export interface BlobInfoCacheLimits {
  /** Most blob digests remembered per registry. Default 20 000. */
  blobsPerRegistry?: number;
  /** Most repositories remembered per blob. Default 8. */
  reposPerBlob?: number;
  /** Most DiffID mappings. Default 20 000. */
  diffIds?: number;
}

/** A compressed blob of a DiffID. */
export interface CompressedBlob {
  digest: Digest;
  compression: Compression | "unknown";
  /** Its size, when the recorder knew it. */
  size?: number;
}

interface FileShape {
  version: 1;
  /** registry → blob digest → repository → last seen (ms). */
  known: Record<string, Record<string, Record<string, number>>>;
  /** compressed blob digest → { diffId, compression, at }. */
  diffIds: Record<string, { diffId: string; compression: string; at: number; size?: number }>;
}

const empty = (): FileShape => ({ version: 1, known: {}, diffIds: {} });

function isShape(v: unknown): v is FileShape {
  const s = v as FileShape;
  return typeof s === "object" && s !== null && s.version === 1 && typeof s.known === "object" && s.known !== null && typeof s.diffIds === "object" && s.diffIds !== null;
}

/** Temp files of flushes that were killed before their rename (older than 10 minutes) are garbage. */
async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(`${BLOB_INFO_CACHE_FILE}.`) || !n.endsWith(".tmp")) continue;
    const p = path.join(dir, n);
    const st = await fsp.stat(p).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 10 * 60_000) await fsp.rm(p, { force: true });
  }
}

/** Blob locations and DiffID mappings, as described in the module doc. */
export class BlobInfoCache {
  /** The file, or undefined for an in-memory cache. */
  readonly file: string | undefined;
  private data: FileShape = empty();
  private dirty = false;
  private readonly limits: Required<BlobInfoCacheLimits>;

  private constructor(file: string | undefined, limits: BlobInfoCacheLimits) {
    this.file = file;
    this.limits = { blobsPerRegistry: limits.blobsPerRegistry ?? 20_000, reposPerBlob: limits.reposPerBlob ?? 8, diffIds: limits.diffIds ?? 20_000 };
  }

  /** An in-memory cache (tests, browsers, one-off copies). */
  static memory(limits: BlobInfoCacheLimits = {}): BlobInfoCache {
    return new BlobInfoCache(undefined, limits);
  }

  /** Open (or start) the cache file in `dir`. A damaged file is treated as empty and replaced at the next flush. */
  static async open(dir: string, limits: BlobInfoCacheLimits = {}): Promise<BlobInfoCache> {
    const c = new BlobInfoCache(path.join(dir, BLOB_INFO_CACHE_FILE), limits);
    c.data = await c.readFile();
    await removeStaleTemps(dir);
    return c;
  }

  private async readFile(): Promise<FileShape> {
    if (!this.file) return empty();
    try {
      const v = JSON.parse(await fsp.readFile(this.file, "utf8")) as unknown;
      return isShape(v) ? v : empty();
    } catch {
      return empty();
    }
  }

  /** Remember that `digest` is in `repository` of `registry` (seen now). */
  recordKnown(registry: string, repository: string, digest: Digest): void {
    const reg = (this.data.known[registry] ??= {});
    const repos = (reg[digest] ??= {});
    repos[repository] = Date.now();
    this.dirty = true;
  }

  /** Repositories of `registry` where `digest` was seen, most recent first (excluding `except`). */
  candidates(registry: string, digest: Digest, except?: string): string[] {
    const repos = this.data.known[registry]?.[digest] ?? {};
    return Object.entries(repos)
      .filter(([r]) => r !== except)
      .sort((a, b) => b[1] - a[1])
      .map(([r]) => r);
  }

  /** Remember that the compressed blob `blob` (of `size` bytes, when known) uncompresses to `diffId`. */
  recordDiffId(blob: Digest, diffId: Digest, compression: Compression | "unknown" = "unknown", size?: number): void {
    const known = size ?? this.data.diffIds[blob]?.size;
    this.data.diffIds[blob] = { diffId, compression, at: Date.now(), ...(known !== undefined ? { size: known } : {}) };
    this.dirty = true;
  }

  /** The DiffID of a compressed blob, if known. */
  diffIdOf(blob: Digest): Digest | undefined {
    const d = this.data.diffIds[blob]?.diffId;
    return d !== undefined && isDigest(d) ? (d as Digest) : undefined;
  }

  /** The compressed blobs known for a DiffID, most recent first. */
  compressedOf(diffId: Digest): CompressedBlob[] {
    return Object.entries(this.data.diffIds)
      .filter(([, v]) => v.diffId === diffId)
      .sort((a, b) => b[1].at - a[1].at)
      .map(([digest, v]) => ({
        digest: digest as Digest,
        compression: v.compression as CompressedBlob["compression"],
        ...(Number.isSafeInteger(v.size) && v.size! >= 0 ? { size: v.size! } : {}),
      }));
  }

  private merge(disk: FileShape): void {
    for (const [reg, blobs] of Object.entries(disk.known)) {
      const mine = (this.data.known[reg] ??= {});
      for (const [digest, repos] of Object.entries(blobs)) {
        const m = (mine[digest] ??= {});
        for (const [repo, at] of Object.entries(repos)) if (typeof at === "number" && (m[repo] ?? 0) < at) m[repo] = at;
      }
    }
    for (const [blob, v] of Object.entries(disk.diffIds)) {
      const m = this.data.diffIds[blob];
      if (!m || m.at < v.at) this.data.diffIds[blob] = v;
    }
  }

  private prune(): void {
    const { blobsPerRegistry, reposPerBlob, diffIds } = this.limits;
    for (const blobs of Object.values(this.data.known)) {
      for (const [digest, repos] of Object.entries(blobs)) {
        const entries = Object.entries(repos);
        if (entries.length > reposPerBlob) blobs[digest] = Object.fromEntries(entries.sort((a, b) => b[1] - a[1]).slice(0, reposPerBlob));
      }
      const all = Object.entries(blobs);
      if (all.length > blobsPerRegistry) {
        const newest = (r: Record<string, number>) => Math.max(0, ...Object.values(r));
        all.sort((a, b) => newest(b[1]) - newest(a[1]));
        for (const [d] of all.slice(blobsPerRegistry)) delete blobs[d];
      }
    }
    const ids = Object.entries(this.data.diffIds);
    if (ids.length > diffIds) {
      ids.sort((a, b) => b[1].at - a[1].at);
      this.data.diffIds = Object.fromEntries(ids.slice(0, diffIds));
    }
  }

  /** Write what changed (merged with the file as it is now). No-op for a memory cache or when nothing changed. */
  async flush(): Promise<void> {
    if (!this.file || !this.dirty) return;
    this.merge(await this.readFile());
    this.prune();
    await fsp.mkdir(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${randomBytes(6).toString("hex")}.tmp`;
    const fh = await fsp.open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(JSON.stringify(this.data));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, this.file);
    this.dirty = false;
  }
}
