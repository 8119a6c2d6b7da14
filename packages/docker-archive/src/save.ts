/**
 * `save(store, refs, out)`: write a deterministic archive `docker load` accepts.
 *
 * The archive is planned first (every entry's name and exact size, from store
 * metadata only), so its total size is known before a byte is written
 * ({@link archiveSize}); then entries are streamed in sorted order, each blob
 * once, layer blobs straight from the store with constant memory.
 * @module
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { open, rename, unlink } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { Readable, type Writable } from "node:stream";
import { type Digest, InvalidArgumentError, NotFoundError, SizeMismatchError, chunksOf, digestHex, sha256, isSha256Digest } from "@berth/digest";
import { parseReference } from "@berth/image-store";
import { type ContentReader, drained, PositionalWriter, pumpReader } from "@berth/layer-store";
import { digestMismatch } from "./errors.js";
import type { ArchiveStore } from "./store.js";
import { TAR_TRAILER_SIZE, tarEntrySize, tarHeader, tarPadding } from "./tar.js";
import {
  ANNOTATION_CONTAINERD_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_MANIFEST,
} from "@berth/oci";
import { stableJson } from "./util.js";

/** Archive layouts {@link save} writes. */
export type SaveFormat = "docker+oci" | "docker" | "oci";

/** Options of {@link save} and {@link archiveSize}. */
export interface SaveOptions {
  /**
   * `"docker+oci"` (default): the Docker 25+ layout: `oci-layout`, `index.json`,
   * `blobs/sha256/…` plus legacy `manifest.json` (paths into `blobs/`) and
   * `repositories`. `"docker"`: legacy only (`<id>.json`, `<blob>/layer.tar`,
   * `manifest.json`, `repositories`). `"oci"`: OCI layout only.
   */
  format?: SaveFormat;
  /**
   * Write layers as uncompressed tars (the manifest then lists DiffIDs as layer
   * digests). `"zstd"`: only zstd layers, for daemons before Docker 23 that
   * cannot read zstd (dockerd 20.10 fails with "ApplyLayer … unexpected EOF").
   */
  uncompressed?: boolean | "zstd";
  /** mtime of every entry, in seconds (default `SOURCE_DATE_EPOCH` or 0). */
  mtime?: number;
  /** Hash every blob while writing and fail on a mismatch (costs one SHA-256 pass). */
  verify?: boolean;
  /**
   * Layers (by ChainID) to list in `manifest.json` but not write — for a
   * daemon that has them already (`docker` format only; see `loadIntoDaemon`).
   */
  omitChainIDs?: ReadonlySet<Digest>;
  /**
   * Extra files written into the archive beside the images (e.g. the
   * `berth-cache/v1/` parent chain of `@berth/cache`'s `collectParentChain`),
   * sorted in with the other entries. `docker load` ignores files it does not
   * know. Names must be relative, clean, and not collide with archive entries
   * (`ERR_INVALID_ARGUMENT`).
   */
  extraFiles?: ReadonlyArray<{ name: string; bytes: Uint8Array }>;
  /** Called as bytes are written, with the archive's total size (known in advance). */
  onProgress?: (p: { bytesWritten: number; total: number }) => void;
  /**
   * Tags to write for an image instead of the store's: `ref as given in refs →
   * references`. They need not exist in the store (how a build tool saves one
   * image under several names into a daemon). Invalid references are refused
   * (`ERR_INVALID_REFERENCE`).
   */
  repoTags?: Readonly<Record<string, readonly string[]>>;
  /** Called by {@link save} with the plan before the first byte is written (entries, sizes, total). */
  onPlan?: (plan: SavePlan) => void;
}

/** One image in a save. */
export interface SavedImage {
  id: Digest;
  /** Tags written for it (normalized). */
  tags: string[];
  /** Digest of the manifest written into the archive (`blobs/`), absent for `docker`. */
  manifestDigest?: Digest;
}

/** What {@link save} wrote. */
export interface SaveResult {
  /** Bytes written (equals {@link archiveSize}). */
  size: number;
  images: SavedImage[];
  /** Number of distinct blobs written. */
  blobs: number;
}

interface PlanEntry {
  name: string;
  type: "file" | "directory";
  size: number;
  bytes?: Uint8Array;
  open?: () => Promise<AsyncIterable<Uint8Array>>;
  /** The stored blob as it goes into the archive, for positional reads (see {@link writePlan}). */
  reader?: () => Promise<ContentReader>;
  digest?: Digest;
}

/** A planned archive: entries in order and the exact total size. */
export interface SavePlan {
  entries: readonly PlanEntry[];
  size: number;
  images: SavedImage[];
  blobs: number;
  mtime: number;
  /** Distinct layer blobs the images reference. */
  layers: number;
  /** Of those, left out because of `omitChainIDs`. */
  omitted: number;
}

interface ImageData {
  id: Digest;
  tags: string[];
  configBytes: Uint8Array;
  layers: Array<{ chainID: Digest; diffID: Digest; blob: { digest: Digest; size: number; mediaType: string }; size: number }>;
  manifest?: { digest: Digest; bytes: Uint8Array };
}

function defaultMtime(): number {
  const s = process.env.SOURCE_DATE_EPOCH;
  if (s && /^[0-9]+$/.test(s)) return Number(s);
  return 0;
}

async function resolveImages(
  store: ArchiveStore,
  refs: readonly string[],
  repoTags: Readonly<Record<string, readonly string[]>> = {},
): Promise<Map<Digest, Set<string>>> {
  const out = new Map<Digest, Set<string>>();
  if (refs.length === 0) throw new NotFoundError("save: no images given", { code: "ERR_NO_IMAGES" });
  for (const ref of refs) {
    const id = await store.references.resolve(ref);
    const tags = out.get(id) ?? new Set<string>();
    out.set(id, tags);
    const given = Object.hasOwn(repoTags, ref) ? repoTags[ref] : undefined;
    if (given) {
      for (const t of given) tags.add(parseReference(t).string);
      continue;
    }
    // A name saves its tag; an ID or ID prefix saves the image untagged (docker save does the same).
    const looksLikeId = /^(sha256:)?[0-9a-f]{1,64}$/.test(ref) && id.slice(7).startsWith(ref.replace(/^sha256:/, ""));
    if (looksLikeId) continue;
    let normalized: string | undefined;
    try {
      const r = parseReference(ref);
      if (r.tag !== undefined && r.digest === undefined) normalized = r.string;
    } catch {
      normalized = undefined;
    }
    if (normalized && (await store.references.referencesOf(id)).includes(normalized)) tags.add(normalized);
  }
  return out;
}

type UncompressPick = (l: { blob: { mediaType: string } }) => boolean;

async function imageData(store: ArchiveStore, id: Digest, tags: Set<string>, uncompressed: UncompressPick, wantManifest: boolean): Promise<ImageData> {
  const img = await store.images.get(id);
  const layers: ImageData["layers"] = [];
  let cur = img.chainID;
  while (cur) {
    const l = await store.layers.get(cur);
    layers.push({ chainID: l.chainID, diffID: l.diffID, blob: l.blob, size: l.size });
    cur = l.parent;
  }
  layers.reverse();
  const data: ImageData = { id: img.id, tags: [...tags].sort(), configBytes: img.configBytes, layers };
  if (wantManifest) {
    data.manifest = await manifestFor(store, data, uncompressed);
  }
  return data;
}

/** The stored manifest when it describes exactly the blobs written; otherwise one made from them. */
async function manifestFor(store: ArchiveStore, data: ImageData, uncompressed: UncompressPick): Promise<{ digest: Digest; bytes: Uint8Array }> {
  const written = data.layers.map((l) =>
    uncompressed(l)
      ? { mediaType: MEDIA_TYPE_OCI_LAYER, digest: l.diffID, size: l.size }
      : { mediaType: l.blob.mediaType, digest: l.blob.digest, size: l.blob.size },
  );
  if (!data.layers.some(uncompressed)) {
    try {
      const m = await store.images.manifest(data.id);
      const parsed = JSON.parse(new TextDecoder().decode(m.bytes)) as {
        config?: { digest?: string };
        layers?: Array<{ digest?: string; size?: number }>;
      };
      const ok =
        parsed.config?.digest === data.id &&
        Array.isArray(parsed.layers) &&
        parsed.layers.length === written.length &&
        parsed.layers.every((l, i) => l.digest === written[i]!.digest && l.size === written[i]!.size);
      if (ok) return m;
    } catch {
      // fall through: synthesize
    }
  }
  const bytes = stableJson({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: data.id, size: data.configBytes.length },
    layers: written,
  });
  return { digest: sha256(bytes), bytes };
}

/**
 * Plan an archive: resolve `refs` (tags, names, IDs, ID prefixes), gather
 * every blob and document, and compute the exact size. Reads metadata only.
 */
export async function planSave(store: ArchiveStore, refs: readonly string[], options: SaveOptions = {}): Promise<SavePlan> {
  const format = options.format ?? "docker+oci";
  const uncompressedOpt = options.uncompressed ?? false;
  const unc = (l: { blob: { mediaType: string } }) =>
    uncompressedOpt === true || (uncompressedOpt === "zstd" && l.blob.mediaType.endsWith("zstd"));
  const mtime = options.mtime ?? defaultMtime();
  const omit = options.omitChainIDs;
  if (omit && omit.size > 0 && format !== "docker")
    throw new InvalidArgumentError("omitChainIDs needs format \"docker\" (an OCI layout must hold every blob)", {
      code: "ERR_INVALID_ARGUMENT",
    });
  const wanted = await resolveImages(store, refs, options.repoTags);
  const layerNamesSeen = new Set<string>();
  const omittedNames = new Set<string>();
  const images: ImageData[] = [];
  for (const [id, tags] of [...wanted].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)))
    images.push(await imageData(store, id, tags, unc, format !== "docker"));

  const files = new Map<string, PlanEntry>();
  const dirs = new Set<string>();
  const addFile = (e: PlanEntry) => {
    if (!files.has(e.name)) files.set(e.name, e);
    const parts = e.name.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  };
  const blobName = (d: Digest) => (format === "docker" ? "" : `blobs/sha256/${digestHex(d)}`);
  const layerSource = (l: ImageData["layers"][number]) => ({
    size: unc(l) ? l.size : l.blob.size,
    digest: unc(l) ? l.diffID : l.blob.digest,
    open: async () => chunksOf(unc(l) ? await store.layers.openUncompressed(l.chainID) : await store.layers.open(l.chainID)),
    ...(!unc(l) && store.content.openReader ? { reader: () => store.content.openReader!(l.blob.digest) } : {}),
  });

  const legacy: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
  const repositories: Record<string, Record<string, string>> = {};
  const indexManifests: Array<Record<string, unknown>> = [];
  for (const img of images) {
    const configName = format === "docker" ? `${digestHex(img.id)}.json` : blobName(img.id);
    addFile({ name: configName, type: "file", size: img.configBytes.length, bytes: img.configBytes, digest: img.id });
    const layerNames: string[] = [];
    for (const l of img.layers) {
      const src = layerSource(l);
      const name = format === "docker" ? `${digestHex(src.digest)}/layer.tar` : blobName(src.digest);
      layerNamesSeen.add(name);
      if (omit?.has(l.chainID)) omittedNames.add(name);
      else addFile({ name, type: "file", ...src });
      layerNames.push(name);
    }
    if (img.manifest) {
      addFile({ name: blobName(img.manifest.digest), type: "file", size: img.manifest.bytes.length, bytes: img.manifest.bytes, digest: img.manifest.digest });
      const desc: { mediaType: string; digest: Digest; size: number } = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: img.manifest.digest, size: img.manifest.bytes.length };
      const mediaType = (JSON.parse(new TextDecoder().decode(img.manifest.bytes)) as { mediaType?: string }).mediaType;
      if (mediaType) desc.mediaType = mediaType;
      if (img.tags.length === 0) indexManifests.push(desc);
      for (const t of img.tags) {
        const r = parseReference(t);
        indexManifests.push({ ...desc, annotations: { [ANNOTATION_CONTAINERD_IMAGE_NAME]: r.string, [ANNOTATION_REF_NAME]: r.tag! } });
      }
    }
    const familiarTags = img.tags.map((t) => parseReference(t).familiar);
    legacy.push({ Config: configName, RepoTags: familiarTags.length ? familiarTags : null, Layers: layerNames });
    const top = layerNames.at(-1);
    if (top) {
      for (const t of img.tags) {
        const r = parseReference(t);
        repositories[r.familiarName] ??= {};
        repositories[r.familiarName]![r.tag!] = format === "docker" ? top.split("/")[0]! : top.slice("blobs/sha256/".length);
      }
    }
  }
  const doc = (name: string, v: unknown) => {
    const bytes = stableJson(v);
    addFile({ name, type: "file", size: bytes.length, bytes });
  };
  for (const x of options.extraFiles ?? []) {
    const clean = x.name.split("/").every((p) => p !== "" && p !== "." && p !== "..") && !x.name.includes("\\");
    if (!clean || files.has(x.name) || dirs.has(x.name) || ["manifest.json", "repositories", "oci-layout", "index.json"].includes(x.name) || x.name.startsWith("blobs/")) {
      throw new InvalidArgumentError(`save: extra file name ${JSON.stringify(x.name)} is unsafe or collides with an archive entry`, { code: "ERR_INVALID_ARGUMENT" });
    }
    addFile({ name: x.name, type: "file", size: x.bytes.length, bytes: x.bytes });
  }
  if (format !== "oci") {
    doc("manifest.json", legacy);
    doc("repositories", sortKeys(repositories));
  }
  if (format !== "docker") {
    doc("oci-layout", { imageLayoutVersion: "1.0.0" });
    doc("index.json", { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: indexManifests });
  }
  const entries: PlanEntry[] = [
    ...[...dirs].map((d): PlanEntry => ({ name: `${d}/`, type: "directory", size: 0 })),
    ...files.values(),
  ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let size = TAR_TRAILER_SIZE;
  for (const e of entries) {
    // Every header is a plain ustar block (that is what makes the size exact):
    // a name that does not fit one is refused now, before anything is written.
    try {
      tarHeader({ name: e.name, type: e.type, size: e.size, mtime });
    } catch (err) {
      throw new InvalidArgumentError(`save: entry name ${JSON.stringify(e.name)} does not fit a ustar header`, { code: "ERR_INVALID_ARGUMENT", cause: err });
    }
    size += tarEntrySize(e.size);
  }
  const blobs = [...files.values()].filter((f) => f.digest !== undefined).length;
  return {
    entries,
    size,
    blobs,
    mtime,
    layers: layerNamesSeen.size,
    omitted: [...omittedNames].filter((n) => !files.has(n)).length,
    images: images.map((i) => ({ id: i.id, tags: i.tags, ...(i.manifest ? { manifestDigest: i.manifest.digest } : {}) })),
  };
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(o).sort()) {
    const v = o[k]!;
    out[k] = typeof v === "object" && v !== null && !Array.isArray(v) ? (sortKeys(v as Record<string, unknown>) as T) : v;
  }
  return out;
}

/** The exact byte length {@link save} will write for these refs and options. */
export async function archiveSize(store: ArchiveStore, refs: readonly string[], options: SaveOptions = {}): Promise<number> {
  return (await planSave(store, refs, options)).size;
}

/** Counts (and with `verify`, hashes) a streamed entry's body and checks it at the end. */
class BodyCheck {
  #n = 0;
  readonly #h;
  constructor(
    private readonly e: PlanEntry,
    verify: boolean | undefined,
  ) {
    this.#h = verify && e.digest && isSha256Digest(e.digest) ? sha256.create() : undefined;
  }
  add(c: Uint8Array): void {
    this.#n += c.length;
    if (this.#n > this.e.size) throw new SizeMismatchError(`blob ${this.e.digest} for ${this.e.name} is larger than ${this.e.size} bytes`);
    this.#h?.update(c);
  }
  end(): void {
    const { e } = this;
    if (this.#n !== e.size) throw new SizeMismatchError(`blob ${e.digest} for ${e.name} is ${this.#n} bytes, expected ${e.size}`);
    const got = this.#h?.digest();
    if (got !== undefined && got !== e.digest) throw digestMismatch(`blob for ${e.name}`, e.digest!, got);
  }
}

/** An entry whose stored blob {@link writePlan} copies with its reader (see `planPieces`). */
interface ReaderBody {
  entry: PlanEntry & { reader: () => Promise<ContentReader> };
}

/**
 * A plan's archive in order: headers, bodies, padding, trailer as bytes —
 * except, with `readers`, the body of an entry that has a reader, which comes
 * as that entry for the caller to copy. Streamed bodies are counted (and with
 * `verify` hashed) as they pass.
 */
async function* planPieces(plan: SavePlan, verify: boolean | undefined, readers: boolean): AsyncGenerator<Uint8Array | ReaderBody> {
  for (const e of plan.entries) {
    yield tarHeader({ name: e.name, type: e.type, size: e.size, mtime: plan.mtime });
    if (e.type !== "file") continue;
    if (e.bytes) {
      yield e.bytes;
    } else if (readers && e.reader) {
      yield { entry: e as ReaderBody["entry"] };
    } else if (e.open) {
      const check = new BodyCheck(e, verify);
      for await (const c of await e.open()) {
        check.add(c);
        yield c;
      }
      check.end();
    }
    const pad = tarPadding(e.size);
    if (pad.length) yield pad;
  }
  yield new Uint8Array(TAR_TRAILER_SIZE);
}

/** The archive bytes of a plan, as chunks (headers, bodies, padding, trailer). */
export function planChunks(plan: SavePlan, options: { verify?: boolean } = {}): AsyncGenerator<Uint8Array> {
  return planPieces(plan, options.verify, false) as AsyncGenerator<Uint8Array>;
}

/** Options of {@link writePlan}. */
export interface WritePlanOptions {
  /** Hash every blob while writing and fail on a mismatch. */
  verify?: boolean;
  /** Stops the write between chunks with `signal.reason`. */
  signal?: AbortSignal;
  /** Bytes handed to `out` so far, with the plan's total. */
  onProgress?: (p: { bytesWritten: number; total: number }) => void;
}

/**
 * Write a plan's archive to `out` (an HTTP response, stdout) without ending
 * it: the bytes of {@link planChunks}, with stored blobs copied through a few
 * reused buffers (`pumpReader`) instead of a fresh buffer per read. Resolves
 * with the byte count once everything is handed to `out`.
 * @throws SizeMismatchError / DigestMismatchError (`verify`) for a blob that
 *   changed; `ERR_OUTPUT_CLOSED` when `out` closes first; `signal.reason`
 */
export async function writePlan(plan: SavePlan, out: Writable, opts: WritePlanOptions = {}): Promise<number> {
  const { signal, onProgress } = opts;
  let written = 0;
  const progress = (n: number) => {
    written += n;
    onProgress?.({ bytesWritten: written, total: plan.size });
  };
  for await (const piece of planPieces(plan, opts.verify, true)) {
    signal?.throwIfAborted();
    if (piece instanceof Uint8Array) {
      progress(piece.length);
      if (!out.write(piece)) await drained(out, signal);
      continue;
    }
    const e = piece.entry;
    const check = new BodyCheck(e, opts.verify);
    const reader = await e.reader();
    try {
      if (reader.size !== e.size) throw new SizeMismatchError(`blob ${e.digest} for ${e.name} is ${reader.size} bytes, expected ${e.size}`);
      await pumpReader(reader, out, {
        ...(signal ? { signal } : {}),
        onChunk: (c) => {
          check.add(c);
          progress(c.length);
        },
      });
    } finally {
      await reader.close();
    }
    check.end();
  }
  return written;
}

/** A Node Readable of the archive (errors destroy the stream; no partial archive looks complete). */
export function saveStream(store: ArchiveStore, refs: readonly string[], options: SaveOptions = {}): Readable {
  return Readable.from(
    (async function* () {
      const plan = await planSave(store, refs, options);
      yield* planChunks(plan, options);
    })(),
    { objectMode: false, highWaterMark: 1 << 20 },
  );
}

/**
 * Write an archive of `refs` (tags, names, IDs or ID prefixes) to `out`: a file
 * path (written to a temp file beside it, fsynced, renamed; nothing is left on
 * failure) or a Writable (destroyed with the error on failure).
 */
export async function save(store: ArchiveStore, refs: readonly string[], out: string | Writable, options: SaveOptions = {}): Promise<SaveResult> {
  let plan: SavePlan;
  try {
    plan = await planSave(store, refs, options);
    options.onPlan?.(plan);
  } catch (err) {
    if (typeof out !== "string") out.destroy(err as Error);
    throw err;
  }
  const result = { size: plan.size, images: plan.images, blobs: plan.blobs };
  if (typeof out === "string") {
    const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString("hex")}.tmp`);
    const fh = await open(tmp, "wx", 0o644);
    // positional writes with early write-back (the layer store's writer); small
    // pieces (headers, padding, documents) are batched into one write
    const w = new PositionalWriter(fh, { maxInFlight: WRITE_AHEAD });
    try {
      let pending: Uint8Array[] = [];
      let pendingLen = 0;
      const flush = async () => {
        if (pendingLen === 0) return;
        const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen);
        pending = [];
        pendingLen = 0;
        await w.write(buf);
      };
      for await (const c of planChunks(plan, options)) {
        options.onProgress?.({ bytesWritten: w.end + pendingLen + c.length, total: plan.size });
        if (c.length >= 64 * 1024) {
          await flush();
          await w.write(c);
        } else {
          pending.push(c);
          pendingLen += c.length;
          if (pendingLen >= 256 * 1024) await flush();
        }
      }
      await flush();
      await w.finish();
      if (w.written !== plan.size) throw new SizeMismatchError(`archive is ${w.written} bytes, planned ${plan.size}`);
      await fh.close();
      await rename(tmp, out);
    } catch (err) {
      await w.drain().catch(() => {});
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return result;
  }
  let written: number;
  try {
    written = await writePlan(plan, out, options);
    out.end();
    await once(out, "finish");
  } catch (err) {
    out.destroy(err as Error);
    throw err;
  }
  if (written !== plan.size) throw new SizeMismatchError(`archive is ${written} bytes, planned ${plan.size}`);
  return result;
}

/** Where one entry of a planned archive lies in its bytes. */
export interface PlanEntryRange {
  name: string;
  /** Offset of the entry's header. */
  start: number;
  /** Offset of its data (after the header). */
  dataStart: number;
  /** Offset after its padded data. */
  end: number;
  /** Data bytes. */
  size: number;
  /** The data is streamed from the store (a layer blob), not held in the plan. */
  streamed: boolean;
}

/** The byte ranges of a plan's entries, in archive order (for progress that follows the bytes). */
export function planEntryRanges(plan: SavePlan): PlanEntryRange[] {
  const out: PlanEntryRange[] = [];
  let off = 0;
  for (const e of plan.entries) {
    const start = off;
    off += tarEntrySize(e.size);
    out.push({ name: e.name, start, dataStart: start + 512, end: off, size: e.size, streamed: e.open !== undefined });
  }
  return out;
}

/** Bytes of archive writes in flight at once (reading, the thread pool and the disk overlap). */
const WRITE_AHEAD = 32 << 20;

