/**
 * Making an image without a builder: a base image (or none), new layers from
 * directories, tar files or streams, and Dockerfile-style config changes —
 * what `docker import`, `crane append` and buildpacks' imgutil do. Everything
 * is written under one lease, so nothing half-made is ever visible or kept.
 * @module
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { type Digest, InvalidArgumentError } from "@berth/digest";
import { readTar } from "@berth/docker-archive";
import { type ClaimedSource, claimSource } from "@berth/layer-store";
import { type Image, parseReference, type Store } from "@berth/image-store";
import { hostPlatform, parsePlatform } from "@berth/oci";
import { applyChanges, type RunConfig } from "./changes.js";
import { directoryLayer, sourceDateEpoch } from "./dirlayer.js";
import { ImageServiceErrorCode } from "./errors.js";
import { abortable } from "./util.js";

/**
 * A new layer: a path (a directory becomes a deterministic tar; a file is a
 * tar, plain, gzip or zstd), or the bytes of a tar (`name` is what history
 * and errors call it; default `-`).
 */
export type LayerInput =
  | string
  | { path: string; preserveOwner?: boolean }
  | AsyncIterable<Uint8Array>
  | { stream: AsyncIterable<Uint8Array>; name?: string };

/** Options of {@link buildImage}. */
export interface BuildOptions {
  /** Name, ID or ID prefix of the base image (its layers, config and history carry over); default none (`FROM scratch`). */
  base?: string;
  /** New layers, bottom first. */
  layers?: readonly LayerInput[];
  /** Dockerfile instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR). */
  changes?: readonly string[];
  /** References to point at the new image (moved if they named another). */
  tags?: readonly string[];
  /** History comment of each new layer's step. */
  comment?: string;
  /** History `created_by` of each new layer's step (default: empty without a base, `berth import <what>` with one). */
  createdBy?: string;
  /** `os/arch[/variant]`; default the base's platform, else this machine's. */
  platform?: string;
  /** Creation time; default `SOURCE_DATE_EPOCH`, else now. */
  created?: Date;
  /** Keep the files' owners when a layer comes from a directory (default 0:0). */
  preserveOwner?: boolean;
  /** Stop the build; nothing of it stays. */
  signal?: AbortSignal;
}

/** A new image and how it was made. */
export interface BuiltImage {
  id: Digest;
  image: Image;
  /** The new layers, bottom first, with whether the store had them already. */
  layers: Array<{ diffID: Digest; chainID: Digest; existed: boolean }>;
  /** The references now pointing at it (normalized). */
  tags: string[];
}

/**
 * Build an image from a base, new layers and config changes, set its parent
 * to the base (so the classic builder's cache and `docker history` see the
 * chain) and tag it. Layer streams are taken over at the call (see
 * `claimSource` of `@berth/layer-store`): none loses bytes while the base is
 * looked up and the layers below it are written; on a failure, those not read
 * to their end are destroyed.
 * @throws InvalidArgumentError `ERR_INVALID_CHANGE`, `ERR_INVALID_PLATFORM`, `ERR_INVALID_REFERENCE`, `ERR_NOT_A_TAR`, `ERR_UNSAFE_PATH`; NotFoundError for a missing base
 */
export function buildImage(store: Store, opts: BuildOptions): Promise<BuiltImage> {
  const claimed = claimLayerInputs(opts.layers);
  return buildClaimed(store, { ...opts, ...(claimed.layers ? { layers: claimed.layers } : {}) }).finally(claimed.release);
}

/** Layer inputs this package made itself (safe by construction, possibly an empty tar): not read back and checked. */
const madeHere = new WeakSet<object>();

/**
 * A layer stream this package wrote (`commitDirectory`'s diff layer): the
 * build skips the read-back check that refuses unsafe or empty tars from
 * outside. Not part of the package face.
 */
export function trustedLayer(stream: AsyncIterable<Uint8Array>, name: string): LayerInput {
  const input = { stream, name };
  madeHere.add(input);
  return input;
}

/**
 * Take the stream inputs among `layers` over now (see `claimSource` of
 * `@berth/layer-store`), for a caller that awaits something before it builds;
 * `release()` stops those not read to their end (call it when done).
 */
export function claimLayerInputs<T extends readonly LayerInput[] | undefined>(layers: T): { layers: T; release(): void } {
  const streams: ClaimedSource[] = [];
  const claim = (source: AsyncIterable<Uint8Array>) => {
    const claimed = claimSource(source);
    streams.push(claimed);
    return claimed;
  };
  const claimStream = (input: { stream: AsyncIterable<Uint8Array>; name?: string }) => {
    const out = { ...input, stream: claim(input.stream) };
    if (madeHere.has(input)) madeHere.add(out);
    return out;
  };
  const out = layers?.map((input) =>
    typeof input === "string" ? input : Symbol.asyncIterator in input ? claim(input) : "stream" in input ? claimStream(input) : input,
  );
  return {
    layers: out as T,
    release: () => {
      for (const s of streams) s.release();
    },
  };
}

/** {@link buildImage} once its layer streams are taken over. */
async function buildClaimed(store: Store, opts: BuildOptions): Promise<BuiltImage> {
  // everything the caller gave is checked before any byte is written
  const tags = (opts.tags ?? []).map((t) => parseReference(t).string);
  const platformArg = opts.platform ? parsePlatform(opts.platform) : undefined;
  const runConfigEdit = (c: RunConfig) => applyChanges(c, [...(opts.changes ?? [])]);
  runConfigEdit({});
  const epoch = sourceDateEpoch();
  const created = rfc3339(opts.created ?? new Date(epoch !== undefined ? epoch * 1000 : Date.now()));
  const base = opts.base ? await store.images.get(await store.references.resolve(opts.base)) : undefined;
  opts.signal?.throwIfAborted();

  const lease = await store.lease();
  let rejected = false;
  try {
    const layers: BuiltImage["layers"] = [];
    const what: string[] = [];
    let parent = base?.chainID ?? null;
    for (const input of opts.layers ?? []) {
      const { source, name, checked } = await layerSource(input, opts);
      what.push(name);
      const layer = await store.layers.register(abortable(source, opts.signal), parent, { lease });
      if (!checked) {
        try {
          await checkLayerTar(store, layer.chainID, name);
        } catch (err) {
          rejected = true;
          throw err;
        }
      }
      layers.push({ diffID: layer.diffID, chainID: layer.chainID, existed: layer.existed });
      parent = layer.chainID;
    }
    opts.signal?.throwIfAborted();
    const platform = platformArg ?? (base ? platformOf(base) : hostPlatform());
    const step = (name: string) =>
      Object.fromEntries(
        Object.entries({ created, created_by: opts.createdBy ?? (base ? `berth import ${name}` : ""), comment: opts.comment ?? "" }).filter(([, v]) => v !== ""),
      );
    const config = {
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: platform.os,
      created,
      ...(base?.config.author ? { author: base.config.author } : {}),
      config: runConfigEdit((base?.config.config as RunConfig | null | undefined) ?? {}),
      rootfs: { type: "layers", diff_ids: [...(base?.config.rootfs.diff_ids ?? []), ...layers.map((l) => l.diffID)] },
      history: [...(base?.config.history ?? []), ...what.map(step)],
    };
    const image = await store.images.create(new TextEncoder().encode(JSON.stringify(config)), { lease });
    if (base) await store.images.setParent(image.id, base.id);
    for (const t of tags) await store.references.tag(t, image.id, { force: true });
    return { id: image.id, image, layers, tags };
  } finally {
    await lease.release();
    // a rejected layer is garbage now: remove it at once
    if (rejected) await store.gc().catch(() => {});
  }
}

/** Options of {@link importImage}: those of {@link buildImage} without `layers`. */
export type ImportOptions = Omit<BuildOptions, "layers">;

/**
 * `docker import` (and `crane append` with a `base`): one layer from a
 * directory, a tar file or a tar stream. The history comment defaults to
 * `Imported from <name>`.
 */
export async function importImage(store: Store, source: LayerInput, opts: ImportOptions = {}): Promise<BuiltImage> {
  const name = typeof source === "string" ? basename(source) : "path" in source ? basename(source.path) : "stream" in source ? (source.name ?? "-") : "-";
  return buildImage(store, { ...opts, layers: [source], comment: opts.comment ?? `Imported from ${name}` });
}

async function layerSource(input: LayerInput, opts: BuildOptions): Promise<{ source: AsyncIterable<Uint8Array>; name: string; checked: boolean }> {
  if (typeof input !== "string" && Symbol.asyncIterator in input) return { source: input, name: "-", checked: false };
  if (typeof input !== "string" && "stream" in input) return { source: input.stream, name: input.name ?? "-", checked: madeHere.has(input) };
  const path = typeof input === "string" ? input : input.path;
  const preserveOwner = (typeof input === "string" ? undefined : input.preserveOwner) ?? opts.preserveOwner === true;
  // a layer made here from a directory is safe by construction; a tar from outside is checked
  if ((await stat(path)).isDirectory()) return { source: directoryLayer(path, { preserveOwner }), name: basename(path), checked: true };
  return { source: createReadStream(path), name: basename(path), checked: false };
}

function platformOf(image: Image): { os: string; architecture: string; variant?: string } {
  const c = image.config;
  return { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) };
}

/** RFC 3339 without zero milliseconds, as Docker writes `created`. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.000Z$/, "Z");
}

/**
 * Read a just-registered layer back as a tar: refuse input that is not a tar
 * (`ERR_NOT_A_TAR`) and entries that would land outside the root
 * (`ERR_UNSAFE_PATH`), as docker import does when it applies the layer.
 */
async function checkLayerTar(store: Store, chainID: Digest, what: string): Promise<void> {
  const stream = await store.layers.openUncompressed(chainID);
  let entries = 0;
  const unsafe = (name: string) => name.startsWith("/") || name.split("/").includes("..");
  try {
    for await (const e of readTar(stream)) {
      entries++;
      if (unsafe(e.rawName)) {
        throw new InvalidArgumentError(`${what}: unsafe entry ${JSON.stringify(e.rawName)} (outside the image root)`, { code: ImageServiceErrorCode.UNSAFE_PATH });
      }
      if (e.type === "hardlink" && e.linkname !== undefined && unsafe(e.linkname)) {
        throw new InvalidArgumentError(`${what}: hard link ${JSON.stringify(e.rawName)} points outside the image root`, { code: ImageServiceErrorCode.UNSAFE_PATH });
      }
    }
  } catch (err) {
    if ((err as { code?: string }).code === ImageServiceErrorCode.UNSAFE_PATH) throw err;
    throw new InvalidArgumentError(`${what}: not a tar archive (${err instanceof Error ? err.message : String(err)})`, {
      code: ImageServiceErrorCode.NOT_A_TAR,
      cause: err,
    });
  } finally {
    stream.destroy();
  }
  if (entries === 0) throw new InvalidArgumentError(`${what}: not a tar archive (no entries)`, { code: ImageServiceErrorCode.NOT_A_TAR });
}
