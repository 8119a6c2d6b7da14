/**
 * `berth unpack IMAGE DIR`: an image's root filesystem written into a
 * directory, as `umoci unpack` (its rootfs) or `docker export` of a new
 * container give it — every layer applied bottom-up with Docker's whiteout
 * and opaque-directory semantics by `@berth/cache`'s `applyLayer`, streamed
 * from the store's blobs. The tree is built in a temporary sibling of `dir`
 * and renamed into place once complete: on any failure (a hostile layer, a
 * full disk, an abort) nothing half-written is visible at `dir`.
 * @module
 */
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { type ApplyResult, applyStoredLayer, type IdentityMapping, layerChain } from "@berth/cache";
import { AlreadyExistsError, type Digest } from "@berth/digest";
import type { Store } from "@berth/image-store";
import type { Layer } from "@berth/layer-store";
import { ImageServiceErrorCode } from "./errors.js";

/** Options of {@link unpackImage}. */
export interface UnpackOptions {
  /** Keep the layers' owners (lchown). Default: when running as root. */
  owners?: boolean;
  /** Where owners are not kept, record them in `user.rootlesscontainers` (see `@berth/cache`'s `applyLayer`). Default: when owners are not kept. */
  recordOwners?: boolean;
  /** Container owners → host owners on disk, where owners are kept (see `@berth/cache`'s `applyLayer`). */
  idMapping?: IdentityMapping;
  /** Create device nodes and fifos. Default: when running as root. */
  specialFiles?: boolean;
  /** Stop between entries; nothing stays at `dir`. */
  signal?: AbortSignal;
  /** Told when a layer starts (`index` counts from 0, bottom first). */
  onLayerStart?(index: number, count: number, layer: Layer): void;
  /** Told when a layer was applied. */
  onLayer?(index: number, count: number, layer: Layer, result: ApplyResult): void;
}

/** What {@link unpackImage} wrote. */
export interface UnpackResult {
  /** Image ID. */
  id: Digest;
  /** Absolute path of the root filesystem. */
  dir: string;
  /** Per layer, bottom first: what its application did. */
  layers: Array<{ chainID: Digest; diffID: Digest; result: ApplyResult }>;
  /** Totals over the layers. */
  entries: number;
  bytes: number;
  /** Entries not created (devices and fifos when not root) — see each layer's `result.skipped`. */
  skipped: number;
  /** Extended attributes set (with `setfattr`; see `@berth/cache`'s `applyLayer`). */
  xattrs: number;
  /** Extended attributes not set, and why (the first few reasons). */
  xattrsSkipped: number;
  xattrNotes: string[];
  /** Entries whose owner was not applied (not root). */
  ownersNotApplied: number;
  /** Of those, the owners recorded in `user.rootlesscontainers` for a later commit. */
  ownersRecorded: number;
}

/**
 * Write the root filesystem of the image `name` (reference, ID or unique ID
 * prefix) into `dir`, which must be absent or an empty directory (its parent
 * is created when missing).
 * @throws NotFoundError `ERR_IMAGE_NOT_FOUND` / `ERR_LAYER_NOT_FOUND`;
 *   AlreadyExistsError `ERR_TARGET_NOT_EMPTY`; the layer errors of
 *   `applyLayer` (`ERR_UNSAFE_PATH`, `ERR_UNSAFE_LINK`, `ERR_HARDLINK_TARGET`,
 *   `ERR_INVALID_TAR`, `ERR_CORRUPT_DATA`, …)
 */
export async function unpackImage(store: Store, name: string, dir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const target = resolve(dir);
  const id = await store.references.resolve(name);
  const image = await store.images.get(id);
  await checkTarget(target);
  const chain = image.chainID ? await layerChain(store, image.chainID) : [];
  await mkdir(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${basename(target)}.berth-unpack-${randomBytes(6).toString("hex")}`);
  await mkdir(tmp, 0o755);
  const out: UnpackResult = { id, dir: target, layers: [], entries: 0, bytes: 0, skipped: 0, xattrs: 0, xattrsSkipped: 0, xattrNotes: [], ownersNotApplied: 0, ownersRecorded: 0 };
  try {
    for (const [i, layer] of chain.entries()) {
      opts.signal?.throwIfAborted();
      opts.onLayerStart?.(i, chain.length, layer);
      const result = await applyStoredLayer(store.content, layer, tmp, opts);
      out.layers.push({ chainID: layer.chainID, diffID: layer.diffID, result });
      out.entries += result.entries;
      out.bytes += result.bytes;
      out.skipped += result.skippedCount;
      out.xattrs += result.xattrs;
      out.xattrsSkipped += result.xattrsSkipped;
      for (const n of result.xattrNotes) if (out.xattrNotes.length < 5) out.xattrNotes.push(n);
      out.ownersNotApplied += result.ownersNotApplied;
      out.ownersRecorded += result.ownersRecorded;
      opts.onLayer?.(i, chain.length, layer, result);
    }
    opts.signal?.throwIfAborted();
    await checkTarget(target); // still absent or empty: rename replaces an empty directory
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    if ((err as NodeJS.ErrnoException).code === "ENOTEMPTY" || (err as NodeJS.ErrnoException).code === "EEXIST") throw notEmpty(target);
    throw err;
  }
  return out;
}

async function checkTarget(target: string): Promise<void> {
  const st = await lstat(target).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory() || (await readdir(target)).length > 0) throw notEmpty(target);
}

function notEmpty(target: string): AlreadyExistsError {
  return new AlreadyExistsError(`${target}: exists and is not an empty directory`, { code: ImageServiceErrorCode.TARGET_NOT_EMPTY, details: { path: target } });
}
