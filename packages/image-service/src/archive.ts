/**
 * `docker load` and `docker save` as the image service offers them: a file
 * takes the fast paths of `@berth/docker-archive` (worker threads for load;
 * positional writes, fsync and rename for save), a stream the calling
 * thread; the build cache's parent chain rides along when asked
 * (`@berth/cache`); an AbortSignal stops either with nothing kept.
 * @module
 */
import type { Writable } from "node:stream";
import { collectParentChain, isParentChainEntry, type RestoreResult, restoreParentChain } from "@berth/cache";
import {
  load,
  type LoadOptions,
  type LoadResult,
  writePlan,
  planSave,
  type SaveOptions,
  type SavePlan,
  type SaveResult,
  save,
} from "@berth/docker-archive";
import { parseReference, type Store } from "@berth/image-store";
import { abortable } from "./util.js";

/** Options of {@link loadImages}. */
export interface LoadImagesOptions extends Omit<LoadOptions, "overwriteTags" | "extraFiles"> {
  /**
   * After loading, restore the parent chain that `saveImages(..., {
   * withParents: true })` carried (default true; from a file or a stream).
   */
  restoreParents?: boolean;
}

/** What {@link loadImages} did. */
export interface LoadImagesResult extends LoadResult {
  /** The parent chain restored, when the archive carried one. */
  parentChain?: RestoreResult;
}

/**
 * Load a `docker save` / skopeo / OCI archive (tar or gzip'd tar). A path is
 * read by worker threads, several layers at once; a stream on this thread.
 */
export async function loadImages(store: Store, source: string | AsyncIterable<Uint8Array>, opts: LoadImagesOptions = {}): Promise<LoadImagesResult> {
  const { restoreParents, ...options } = opts;
  // a stream is also stopped between its chunks (a large entry on this thread)
  const input = typeof source === "string" ? source : abortable(source, opts.signal);
  // the parent chain's files come from the load's own pass: one reading of the archive, one answer
  const result: LoadImagesResult = await load(store, input, { ...options, ...(restoreParents !== false ? { extraFiles: isParentChainEntry } : {}) });
  if (result.extraFiles.length > 0) result.parentChain = await restoreParentChain(store, result.extraFiles);
  return result;
}

/** Options of {@link saveImages} and {@link openSave}. */
export interface SaveImagesOptions extends Omit<SaveOptions, "extraFiles"> {
  /**
   * Carry the parent chains of the images (intermediate configs, parent links,
   * built-locally marks) so the classic builder's cache survives save and
   * load; `docker load` ignores the extra files.
   */
  withParents?: boolean;
  /** Called with the plan before the first byte (entries, sizes, total). */
  onPlan?: (plan: SavePlan) => void;
  /** Stop the save; a file output is removed. */
  signal?: AbortSignal;
}

/** What {@link saveImages} wrote. */
export interface SaveImagesResult extends SaveResult {
  /** Intermediate configs carried with `withParents`. */
  carried: number;
}

/** An archive about to be streamed: its plan (size known first) and its bytes. */
export interface OpenedSave {
  plan: SavePlan;
  /** Intermediate configs carried with `withParents`. */
  carried: number;
  /**
   * Write the archive's bytes to `out` (an HTTP response, stdout) without
   * ending it; resolves with the byte count. Layers go through a few reused
   * buffers (docker-archive's `writePlan`). Stops with the open's `signal`.
   * @throws `ERR_OUTPUT_CLOSED` when `out` closes first; the signal's reason
   */
  writeTo(out: Writable, opts?: { onProgress?: (bytesWritten: number) => void }): Promise<number>;
}

/**
 * The names of a save as `docker save` reads them (moby's `parseNames`): a
 * bare repository name (no tag, no digest, not an ID) means every tag of that
 * repository; with none, it is the name's `:latest` (and fails as such).
 */
export async function expandSaveNames(store: Store, names: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  let refs: Array<{ ref: string }> | undefined;
  for (const name of names) {
    let bare: string | undefined;
    try {
      const r = parseReference(name, { defaultTag: false });
      if (r.tag === undefined && r.digest === undefined && !/^(sha256:)?[0-9a-f]{12,64}$/.test(name)) bare = r.name;
    } catch {
      bare = undefined; // an ID prefix or a malformed name: resolved (and refused) by the save itself
    }
    if (bare === undefined) {
      out.push(name);
      continue;
    }
    refs ??= await store.references.list();
    const tags = refs.map((x) => x.ref).filter((ref) => !ref.includes("@") && ref.slice(0, ref.lastIndexOf(":")) === bare);
    out.push(...(tags.length > 0 ? tags : [name]));
  }
  return out;
}

async function planFor(store: Store, names: readonly string[], opts: SaveImagesOptions): Promise<{ plan: SavePlan; options: SaveOptions; carried: number }> {
  const { withParents, onPlan, signal, ...rest } = opts;
  names = await expandSaveNames(store, names);
  const chain = withParents ? await collectParentChain(store, names) : undefined;
  const options: SaveOptions = { ...rest, ...(chain ? { extraFiles: chain.files } : {}) };
  const plan = await planSave(store, names, options);
  signal?.throwIfAborted();
  onPlan?.(plan);
  return { plan, options, carried: chain?.carried.length ?? 0 };
}

/**
 * Plan a save of `names` (every name resolved, so a bad one fails before any
 * byte) and return its bytes as a stream — for stdout and HTTP responses,
 * which send the size first.
 */
export async function openSave(store: Store, names: readonly string[], opts: SaveImagesOptions = {}): Promise<OpenedSave> {
  const { plan, options, carried } = await planFor(store, names, opts);
  const { signal } = opts;
  return {
    plan,
    carried,
    writeTo: (out, w = {}) =>
      writePlan(plan, out, {
        ...(options.verify ? { verify: true } : {}),
        ...(signal ? { signal } : {}),
        ...(w.onProgress ? { onProgress: (p) => w.onProgress!(p.bytesWritten) } : {}),
      }),
  };
}

/**
 * Save `names` to a file (written beside it, fsynced and renamed into place:
 * a partial archive is never visible) or a writable stream.
 */
export async function saveImages(store: Store, names: readonly string[], out: string | Writable, opts: SaveImagesOptions = {}): Promise<SaveImagesResult> {
  const { withParents, signal, onProgress, ...rest } = opts;
  signal?.throwIfAborted();
  names = await expandSaveNames(store, names);
  const chain = withParents ? await collectParentChain(store, names) : undefined;
  const result = await save(store, names, out, {
    ...rest,
    ...(chain ? { extraFiles: chain.files } : {}),
    onProgress: (p) => {
      signal?.throwIfAborted();
      onProgress?.(p);
    },
  });
  return { ...result, carried: chain?.carried.length ?? 0 };
}
