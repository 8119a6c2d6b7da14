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
import {
  type ByteSource,
  chunksOf,
  createDecompressor,
  DecompressionLimitError,
  type Decompressor,
  type Digest,
  DigestMismatchError,
  detectCompression,
  digestHex,
  InvalidArgumentError,
  sha256,
} from "@berth/digest";
import { type TarHeaderEntry, TarHeaderWalker } from "@berth/docker-archive";
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

/** Most entries a layer may have: the list is held in memory (a few hundred bytes each), so a tar of millions of empty entries is refused. */
export const MAX_LAYER_ENTRIES = 1_000_000;

/**
 * Push-style reader of a layer tar's entries, from its headers alone:
 * bodies are skipped (never hashed or copied), so the cost is reading or
 * decompressing the bytes plus one header parse per entry. `push` the
 * uncompressed tar chunk by chunk (bytes after the end-of-archive block are
 * ignored, so a caller that must read a blob to its end for its digest may
 * go on pushing), then `end()` for the entries.
 */
export class LayerEntriesReader {
  readonly #what: string;
  readonly #entries: LayerEntry[] = [];
  readonly #walker: TarHeaderWalker;
  /** An error of ours (depth, count), thrown through the walker, not to be wrapped. */
  #ours: unknown;

  /** `what` names the layer in errors (`layer sha256:…`). */
  constructor(what = "layer") {
    this.#what = what;
    this.#walker = new TarHeaderWalker((h) => {
      try {
        const e = entryOf(h, what);
        if (!e) return;
        if (this.#entries.length >= MAX_LAYER_ENTRIES) {
          throw new InvalidArgumentError(`${what}: more than ${MAX_LAYER_ENTRIES} entries`, { code: ImageServiceErrorCode.TOO_MANY_ENTRIES });
        }
        this.#entries.push(e);
      } catch (err) {
        this.#ours = err;
        throw err;
      }
    });
  }

  /** The end-of-archive block was read: later bytes are ignored. */
  get done(): boolean {
    return this.#walker.done;
  }

  /** The next chunk of the uncompressed tar. @throws as {@link readLayerEntries} */
  push(chunk: Uint8Array): void {
    if (this.#walker.done) return;
    try {
      this.#walker.push(chunk);
    } catch (err) {
      throw this.#wrap(err);
    }
  }

  /** The tar ended: its entries, in tar order. @throws as {@link readLayerEntries} */
  end(): LayerEntry[] {
    try {
      this.#walker.end();
    } catch (err) {
      throw this.#wrap(err);
    }
    return this.#entries;
  }

  /** A tar error (or a decompressor's) as `ERR_NOT_A_TAR`; others unchanged. */
  wrap(err: unknown): unknown {
    return this.#wrap(err);
  }

  #wrap(err: unknown): unknown {
    const code = (err as { code?: unknown })?.code;
    if (err === this.#ours || typeof code !== "string" || !TAR_CODES.has(code)) return err;
    return new InvalidArgumentError(`${this.#what}: not a readable tar (${err instanceof Error ? err.message : String(err)})`, {
      code: ImageServiceErrorCode.NOT_A_TAR,
      cause: err,
    });
  }
}

/**
 * Read a layer tar into its entries, from its headers alone (see
 * {@link LayerEntriesReader}); stops reading at the end-of-archive block.
 * @throws InvalidArgumentError `ERR_NOT_A_TAR` when the bytes are not a tar
 *   (the cause holds the tar reader's `ERR_INVALID_TAR` / `ERR_TRUNCATED` /
 *   `ERR_UNSAFE_PATH`, or `ERR_CORRUPT_DATA` of a decompressor), `ERR_UNSAFE_PATH`
 *   for a path deeper than {@link MAX_PATH_DEPTH}, `ERR_TOO_MANY_ENTRIES`
 *   beyond {@link MAX_LAYER_ENTRIES}; errors of the source itself (a failed
 *   read or download) pass through unchanged.
 */
export async function readLayerEntries(source: ByteSource, what = "layer"): Promise<LayerEntry[]> {
  const reader = new LayerEntriesReader(what);
  for await (const chunk of chunksOf(source)) {
    reader.push(chunk);
    if (reader.done) break;
  }
  return reader.end();
}

/** Options of {@link readLayerBlob}. */
export interface ReadLayerBlobOptions {
  /** Names the layer in errors. Default `layer`. */
  what?: string;
  /**
   * The DiffID the uncompressed bytes must hash to: the whole blob is then
   * read (also past the end-of-archive block) and a mismatch is
   * `ERR_DIGEST_MISMATCH`. Without it, reading stops at the end-of-archive block.
   */
  diffID?: Digest;
  /** Largest uncompressed size accepted (`ERR_DECOMPRESSION_LIMIT`). Default: none. */
  maxUncompressedSize?: number;
}

/**
 * Read a layer blob as stored or served (tar, gzip or zstd, told apart by its
 * first bytes) into its entries: decompressed chunk by chunk, headers
 * walked, bodies skipped — memory stays one chunk and one header, whatever
 * the blob's size.
 * @throws as {@link readLayerEntries}; DigestMismatchError `ERR_DIGEST_MISMATCH`
 *   when `diffID` is given and the tar hashes to another; DecompressionLimitError
 */
export async function readLayerBlob(source: ByteSource, opts: ReadLayerBlobOptions = {}): Promise<LayerEntry[]> {
  const what = opts.what ?? "layer";
  const reader = new LayerEntriesReader(what);
  const hash = opts.diffID ? sha256.create() : undefined;
  const max = opts.maxUncompressedSize ?? Number.POSITIVE_INFINITY;
  let size = 0;
  const sink = (chunk: Uint8Array) => {
    size += chunk.length;
    if (size > max) throw new DecompressionLimitError(`${what}: decompresses to more than ${max} bytes`, { details: { limit: max } });
    hash?.update(chunk);
    reader.push(chunk);
  };
  let head: Uint8Array | undefined;
  let decompressor: Decompressor | undefined;
  const it = chunksOf(source)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      let chunk = r.value;
      if (!decompressor) {
        // the first 4 bytes tell the compression
        chunk = head ? concatBytes(head, chunk) : chunk;
        if (chunk.length < 4) {
          head = chunk.slice();
          continue;
        }
        head = undefined;
        decompressor = await createDecompressor(detectCompression(chunk), sink);
      }
      await decompressor.push(chunk);
      if (!hash && reader.done) break; // nothing to verify: the rest is not needed
    }
    if (head) {
      // a blob of under 4 bytes: not compressed (and not a tar either, as the reader will say)
      decompressor = await createDecompressor("none", sink);
      await decompressor.push(head);
    }
    if (hash || !reader.done) await decompressor?.end();
    else decompressor?.abort(); // stopped at the tar's end: the rest of the stream is not wanted
  } catch (err) {
    decompressor?.abort();
    hash?.destroy();
    throw reader.wrap(err);
  } finally {
    await it.return?.(undefined);
  }
  const entries = reader.end();
  if (hash && opts.diffID) {
    const got = hash.digest();
    if (got !== opts.diffID) throw new DigestMismatchError(`${what}: its tar hashes to ${got}, not the DiffID ${opts.diffID}`, { details: { digest: opts.diffID, actual: got } });
  }
  return entries;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function isEntry(v: unknown): v is LayerEntry {
  const e = v as LayerEntry;
  return typeof e === "object" && e !== null && typeof e.path === "string" && typeof e.type === "string" && typeof e.size === "number" && typeof e.mode === "number" && typeof e.mtime === "number";
}

const cacheFile = (store: Pick<Store, "root">, diffID: Digest) => join(store.root, LAYER_TREE_CACHE_DIR, `${digestHex(diffID)}.json`);

/**
 * The cached file list of the layer `diffID`, or undefined when none (or a
 * damaged one) is cached under the store root.
 */
export async function cachedLayerTree(store: Pick<Store, "root">, diffID: Digest): Promise<LayerFiles | undefined> {
  const entries = await readCache(cacheFile(store, diffID), diffID);
  return entries ? filesOf(diffID, entries) : undefined;
}

/**
 * Cache the entries of the layer `diffID` under the store root. The caller
 * vouches that they were read from bytes whose SHA-256 is `diffID` (every
 * image with that layer will be shown them).
 */
export async function cacheLayerTree(store: Pick<Store, "root">, diffID: Digest, entries: LayerEntry[]): Promise<LayerFiles> {
  await writeCache(join(store.root, LAYER_TREE_CACHE_DIR), cacheFile(store, diffID), diffID, entries);
  return filesOf(diffID, entries);
}

function filesOf(diffID: Digest, entries: LayerEntry[]): LayerFiles {
  let bytes = 0;
  for (const e of entries) bytes += e.size;
  return { diffID, entries, bytes };
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
  const cached = await cachedLayerTree(store, diffID);
  if (cached) return cached;
  // openUncompressed() throws the typed not-found error when no layer has this digest
  const chainID = layer?.chainID ?? digest;
  const stream = await store.layers.open(chainID);
  let entries: LayerEntry[];
  try {
    // the blob as stored: verified at ingest, so read only up to the tar's end
    entries = await readLayerBlob(stream, { what: `layer ${diffID}` });
  } finally {
    stream.destroy();
  }
  return cacheLayerTree(store, diffID, entries);
}
