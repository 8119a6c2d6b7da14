/**
 * The file list of one layer, read from its tar once (streamed, never the
 * whole blob in memory) and cached per DiffID under the store root, so the
 * second look at a layer costs one small JSON read.
 *
 * Whiteouts are decoded as the OCI image spec (and overlayfs exports) write
 * them: `dir/.wh.name` removes `dir/name` from the layers below, and
 * `dir/.wh..wh..opq` makes `dir` opaque (everything below it in lower layers
 * is hidden).
 * @module
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type ByteSource, type Digest, digestHex, InvalidArgumentError } from "@berth/digest";
import { type TarHeaderEntry, walkTarHeaders } from "@berth/docker-archive";
import type { Store } from "@berth/image-store";
import { checkDigest } from "@berth/layer-store";
import { ImageServiceErrorCode } from "./errors.js";

/** What a layer entry is. `whiteout` and `opaque` are the OCI removal markers, decoded. */
export type LayerEntryType = "file" | "dir" | "symlink" | "hardlink" | "other" | "whiteout" | "opaque";

/** One entry of a layer tar (its header: bodies are never read, see {@link readLayerEntries}). */
export interface LayerEntry {
  /**
   * Normalized path (no leading `./` or `/`, no trailing slash). For a
   * whiteout, the path it removes (`a/.wh.b` → `a/b`); for an opaque marker,
   * the directory it makes opaque (`a/.wh..wh..opq` → `a`).
   */
  path: string;
  type: LayerEntryType;
  /** Body bytes (the tar header's size; 0 for everything but regular files). */
  size: number;
  /** Permission and type bits of the header. */
  mode: number;
  /** Link target, for symlinks and hard links. */
  link?: string;
  /** Modification time (seconds) of the header: with size, mode, owner and link, what tells a rewrite from a change. */
  mtime: number;
  /** Owner and group IDs of the header. */
  uid: number;
  gid: number;
}

/** The entries of one layer, in tar order. */
export interface LayerFiles {
  diffID: Digest;
  entries: LayerEntry[];
  /** Sum of the entries' sizes: the layer's size as dockerd counts it. */
  bytes: number;
}

/** Version of the cache file format; a file of another version is recomputed. */
const CACHE_VERSION = 2;
/** Cache files live here, under the store root: `<root>/cache/explorer/layers/<hex>.json`. */
export const LAYER_TREE_CACHE_DIR = join("cache", "explorer", "layers");

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

function typeOf(t: string): LayerEntryType {
  return t === "directory" ? "dir" : t === "file" || t === "symlink" || t === "hardlink" ? t : "other";
}

/**
 * Deepest path a layer entry may have. A path is at most PATH_MAX (4096)
 * bytes on Linux, so 2048 components; deeper ones only come from hostile
 * tars, and would overflow the stack of the tree walks.
 */
export const MAX_PATH_DEPTH = 2048;

/** Errors of the tar itself (rather than of the source the bytes come from). */
const TAR_CODES: ReadonlySet<string> = new Set(["ERR_INVALID_TAR", "ERR_TRUNCATED", "ERR_UNSAFE_PATH", "ERR_CORRUPT_DATA"]);

/** A header as a layer entry (whiteouts and opaque markers decoded), or undefined for the archive root. */
function entryOf(e: TarHeaderEntry, what: string): LayerEntry | undefined {
  if (e.name === "") return undefined; // the archive root itself (`./`)
  let depth = 1;
  for (let i = e.name.indexOf("/"); i >= 0; i = e.name.indexOf("/", i + 1)) {
    if (++depth > MAX_PATH_DEPTH) {
      throw new InvalidArgumentError(`${what}: entry at byte ${e.offset} is more than ${MAX_PATH_DEPTH} directories deep`, {
        code: ImageServiceErrorCode.UNSAFE_PATH,
        details: { offset: e.offset },
      });
    }
  }
  const slash = e.name.lastIndexOf("/");
  const dir = slash < 0 ? "" : e.name.slice(0, slash);
  const base = e.name.slice(slash + 1);
  const owner = { mtime: e.mtime, uid: e.uid, gid: e.gid };
  if (base === OPAQUE) return { path: dir, type: "opaque", size: 0, mode: e.mode, ...owner };
  if (base.startsWith(WHITEOUT)) {
    const gone = base.slice(WHITEOUT.length);
    return { path: dir ? `${dir}/${gone}` : gone, type: "whiteout", size: 0, mode: e.mode, ...owner };
  }
  const entry: LayerEntry = { path: e.name, type: typeOf(e.type), size: e.size, mode: e.mode, ...owner };
  if (e.linkname !== undefined) entry.link = e.linkname;
  return entry;
}

/**
 * Read a layer tar into its entries, from its headers alone: bodies are
 * skipped (never hashed or copied), so the cost is reading or decompressing
 * the bytes plus one header parse per entry.
 * @throws InvalidArgumentError `ERR_NOT_A_TAR` when the bytes are not a tar
 *   (the cause holds the tar reader's `ERR_INVALID_TAR` / `ERR_TRUNCATED` /
 *   `ERR_UNSAFE_PATH`, or `ERR_CORRUPT_DATA` of a decompressor), `ERR_UNSAFE_PATH`
 *   for a path deeper than {@link MAX_PATH_DEPTH}; errors of the source itself
 *   (a failed read or download) pass through unchanged.
 */
export async function readLayerEntries(source: ByteSource, what = "layer"): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  let ours: unknown;
  try {
    await walkTarHeaders(source, (h) => {
      try {
        const e = entryOf(h, what);
        if (e) out.push(e);
      } catch (err) {
        ours = err;
        throw err;
      }
    });
  } catch (err) {
    const code = (err as { code?: unknown })?.code;
    if (err === ours || typeof code !== "string" || !TAR_CODES.has(code)) throw err;
    throw new InvalidArgumentError(`${what}: not a readable tar (${err instanceof Error ? err.message : String(err)})`, {
      code: ImageServiceErrorCode.NOT_A_TAR,
      cause: err,
    });
  }
  return out;
}

function isEntry(v: unknown): v is LayerEntry {
  const e = v as LayerEntry;
  return typeof e === "object" && e !== null && typeof e.path === "string" && typeof e.type === "string" && typeof e.size === "number" && typeof e.mode === "number" && typeof e.mtime === "number";
}

/** The cached entries of a DiffID, or undefined when absent, damaged or of another format. */
async function readCache(file: string, diffID: Digest): Promise<LayerEntry[] | undefined> {
  try {
    const v = JSON.parse(await readFile(file, "utf8")) as { version?: unknown; diffID?: unknown; entries?: unknown };
    if (v.version !== CACHE_VERSION || v.diffID !== diffID || !Array.isArray(v.entries) || !v.entries.every(isEntry)) return undefined;
    return v.entries;
  } catch {
    return undefined;
  }
}

/** Write the cache file atomically (temp file + rename); a failure only costs the next reader a re-read. */
async function writeCache(dir: string, file: string, diffID: Digest, entries: LayerEntry[]): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, JSON.stringify({ version: CACHE_VERSION, diffID, entries }));
    await rename(tmp, file);
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}

/**
 * The file list of a layer of the store, given its ChainID or its DiffID:
 * from the cache when a good cache file exists, else read from the layer's
 * uncompressed tar once and cached. A damaged cache file is recomputed.
 * @throws NotFoundError `ERR_LAYER_NOT_FOUND`; InvalidArgumentError `ERR_NOT_A_TAR`
 */
export async function layerTree(store: Store, id: Digest | string): Promise<LayerFiles> {
  const digest = checkDigest(id);
  // A ChainID names a layer record; otherwise the digest is a DiffID.
  const byChain = await store.layers.get(digest).catch(() => undefined);
  const layer = byChain ?? (await store.layers.list()).find((l) => l.diffID === digest);
  const diffID = layer?.diffID ?? digest;
  const dir = join(store.root, LAYER_TREE_CACHE_DIR);
  const file = join(dir, `${digestHex(diffID)}.json`);
  let entries = await readCache(file, diffID);
  if (!entries) {
    // get() throws the typed not-found error when no layer has this digest
    const chainID = layer?.chainID ?? digest;
    const stream = await store.layers.openUncompressed(chainID);
    try {
      entries = await readLayerEntries(stream, `layer ${diffID}`);
    } finally {
      stream.destroy();
    }
    await writeCache(dir, file, diffID, entries);
  }
  let bytes = 0;
  for (const e of entries) bytes += e.size;
  return { diffID, entries, bytes };
}
