/**
 * `docker push` from the store. Layers go compressed as asked (gzip by
 * default, as docker sends them, made in parallel blocks by `gzip.ts`; `zstd`
 * by Node's zlib or the `zstd` program, `zstd.ts`; `none`),
 * each layer stored otherwise converted once, as it is sent: its compressed
 * digest is not known before the bytes are made, so it is uploaded in one
 * streamed PATCH and the digest it hashed to is remembered against its DiffID
 * in the blob-info cache (`<store root>/cache/registry`, skopeo's
 * `blobinfocache`). A second push of the layer then knows the digest up front:
 * a HEAD finds it, a repository of the same registry that has it lends it by
 * a cross-repository mount, and only then is it compressed again (verified
 * against the remembered digest). Pulls record there too, so pushing a pulled
 * image to another repository mounts its layers.
 *
 * An image the repository already has a manifest for (a pull or an earlier
 * push recorded `name@digest`) goes back as that manifest, so a re-push
 * changes nothing and sends only HEADs.
 * @module
 */
import { chainIds, type Compression, type Digest, FailedPreconditionError, hasCode, InvalidArgumentError, sha256 } from "@berth/digest";
import type { Store } from "@berth/image-store";
import {
  INDEX_MEDIA_TYPES,
  layerCompression,
  layerMediaType,
  type OciManifest,
  parseImageConfig,
  parseManifest,
  parseReference,
  type Reference,
} from "@berth/oci";
import { type BlobInfoCache, copyImage, type ImageSource, type ManifestResult, type Repository, registryDestination, registrySource } from "@berth/registry";
import pLimit from "p-limit";
import { ImageServiceErrorCode } from "./errors.js";
import { parallelGzip } from "./gzip.js";
import { type Compress, zstdCompressor } from "./zstd.js";
import { fromOffset, type RegistryEvent, type RegistryOptions, resolvedEvent, storeSource, type TransferredBlob, transferred, withBlobInfoCache, withClient } from "./registry.js";

/** How a push sends layers. */
export type PushCompression = Compression;

/** Options of {@link pushImage}. */
export interface PushOptions extends RegistryOptions {
  /** The compression layers are sent with; a layer stored otherwise is converted. Default `gzip`, as docker. */
  compression?: PushCompression;
  /** The blob-info cache to read and record in (kept open). Default: the store's, flushed at the end. */
  blobInfoCache?: BlobInfoCache;
}

/** What {@link pushImage} did. */
export interface PushResult {
  /** The normalised reference pushed. */
  reference: string;
  familiar: string;
  /** The repository (`registry/path`), as docker prints it in "The push refers to repository [...]". */
  name: string;
  tag: string;
  /** The image ID. */
  id: Digest;
  /** The manifest pushed, its size and media type. */
  digest: Digest;
  size: number;
  mediaType: string;
  blobs: TransferredBlob[];
  /** 0 when the registry had the manifest under the tag already. */
  manifestsWritten: number;
  /** Blob bytes sent (compressed bytes for converted layers). */
  bytesTransferred: number;
}

/**
 * How `compression` is made: gzip by {@link parallelGzip} (blocks side by
 * side, random-looking ones stored), zstd by Node's zlib or the `zstd`
 * program (`zstd.ts`), `none` as it is.
 * @throws FailedPreconditionError `ERR_COMPRESSION_UNSUPPORTED`
 */
async function compressor(compression: PushCompression): Promise<Compress> {
  if (compression === "none") return (tar) => tar;
  if (compression === "gzip") return (tar) => parallelGzip(tar);
  const zstd = await zstdCompressor();
  if (!zstd) {
    throw new FailedPreconditionError(`zstd compression needs Node's zlib zstd (Node 22.15 or later; this is ${process.version}) or the zstd program; use gzip or none`, {
      code: ImageServiceErrorCode.COMPRESSION_UNSUPPORTED,
    });
  }
  return zstd;
}

/**
 * Push the store's image `name` (a tag; `:latest` when none is given) to its
 * registry, as `docker push` does, and record `name@digest`.
 * @throws InvalidArgumentError `ERR_INVALID_REFERENCE`, `ERR_PUSH_BY_DIGEST`, `ERR_INVALID_COMPRESSION`;
 *   FailedPreconditionError `ERR_COMPRESSION_UNSUPPORTED`; NotFoundError `ERR_IMAGE_NOT_FOUND`
 *   (no such tag in the store); the registry's errors
 */
export async function pushImage(store: Store, name: string, opts: PushOptions = {}): Promise<PushResult> {
  const ref = parseReference(name);
  if (ref.digest !== undefined || ref.tag === undefined) {
    throw new InvalidArgumentError(`cannot push ${JSON.stringify(name)}: push a tag, not a digest reference`, { code: ImageServiceErrorCode.PUSH_BY_DIGEST });
  }
  const id = await store.references.resolve(ref.string);
  const sent = await sendImage(store, id, ref, opts);
  // docker records the pushed manifest as a RepoDigest of the image
  await store.references.tag(`${ref.name}@${sent.digest}`, id);
  return { reference: ref.string, familiar: ref.familiar, name: ref.name, tag: ref.tag, id, ...sent };
}

/** What {@link sendImage} did. */
export type SendResult = Pick<PushResult, "digest" | "size" | "mediaType" | "blobs" | "manifestsWritten" | "bytesTransferred">;

/**
 * Send the store's image `id` to the repository of `ref`, under its tag
 * (else by digest): {@link pushImage} without the reference lookup and the
 * RepoDigest (what `copy` from the store to a registry does).
 * @throws InvalidArgumentError `ERR_INVALID_COMPRESSION`; FailedPreconditionError
 *   `ERR_COMPRESSION_UNSUPPORTED`; the registry's errors
 */
export async function sendImage(store: Store, id: Digest, ref: Reference, opts: PushOptions = {}): Promise<SendResult> {
  const compression = opts.compression ?? "gzip";
  if (!["gzip", "zstd", "none"].includes(compression)) {
    throw new InvalidArgumentError(`invalid compression ${JSON.stringify(compression)}: want gzip, zstd or none`, { code: ImageServiceErrorCode.INVALID_COMPRESSION });
  }
  const compress = await compressor(compression);
  const tag = ref.digest === undefined ? ref.tag : undefined;
  return withBlobInfoCache(store, opts.blobInfoCache, (cache) =>
    withClient(opts, async (client) => {
      const repo = client.repository(ref, { push: true });
      const own = storeSource(store, id, ref.familiar);
      const ownRoot = await own.root(opts.signal);
      const layers = await planLayers(store, ownRoot, compression, cache);
      // a manifest this repository already has for the image (a pull recorded it) goes back as
      // it is, unless it is the one this push makes (then the HEADs find everything)
      const recorded = await recordedManifest(store, repo, ref, id, layers.predicted?.digest, opts.signal);
      if (recorded) opts.onProgress?.(resolvedEvent(ref, recorded, INDEX_MEDIA_TYPES.has(recorded.mediaType) ? [] : parseManifest(recorded.bytes, `manifest ${recorded.digest}`).layers));
      // layers converted on the way are reported by DiffID (their digest is learnt as they are sent), as docker does
      else opts.onProgress?.(resolvedEvent(ref, layers.predicted ?? ownRoot, layers.manifest.layers.map((l, i) => (layers.todo.includes(i) ? { ...l, digest: layers.diffIDs[i]!, size: layers.known.get(i)?.size ?? 0 } : l))));
      const plan = recorded
        ? { source: registrySource(repo, recorded.digest), root: recorded, sent: new Map<Digest, TransferredBlob>() }
        : await convertLayers(store, repo, own, ownRoot, layers, compress, cache, opts);
      const root = plan.root;
      const copied = await copyImage({ ...plan.source, root: async () => root }, registryDestination(repo), {
        ...(tag !== undefined ? { tag } : {}),
        // mount candidates; the DiffIDs are known here (and for converted layers recorded as they went)
        blobInfoCache: cache,
        learnDiffIds: false,
        ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        // converted layers were reported as they were sent
        ...(opts.onProgress ? { onProgress: (e: RegistryEvent) => ("digest" in e && plan.sent.has(e.digest) ? undefined : opts.onProgress!(e)) } : {}),
      });
      const blobs = copied.blobs.map((b) => plan.sent.get(b.digest) ?? transferred(b));
      return {
        digest: copied.digest,
        size: copied.size,
        mediaType: copied.mediaType,
        blobs,
        manifestsWritten: copied.manifestsWritten,
        bytesTransferred: blobs.reduce((n, b) => n + b.bytes, 0),
      };
    }),
  );
}

interface PushPlan {
  source: ImageSource;
  root: ManifestResult;
  /** Converted layers, already in the repository, by their compressed digest (their progress was reported by DiffID). */
  sent: Map<Digest, TransferredBlob>;
}

/** Which layers of the store's manifest a push converts, and what it will send when the cache knows them all. */
interface LayerPlan {
  manifest: OciManifest;
  compression: PushCompression;
  diffIDs: readonly Digest[];
  chain: readonly Digest[];
  /** Indexes of the layers not stored in the push's compression. */
  todo: number[];
  /** Their converted blobs, where known (always for `none`: the tar itself). */
  known: Map<number, { digest: Digest; size: number }>;
  /** The manifest the push will send, when every converted blob is known. */
  predicted?: ManifestResult;
}

/** The store's manifest with layers `i` replaced by `blobs` (in `compression`). */
function convertedManifest(manifest: OciManifest, mediaType: string, compression: PushCompression, blobs: Map<number, { digest: Digest; size: number }>): ManifestResult {
  const layers = manifest.layers.map((l, i) => {
    const b = blobs.get(i);
    return b ? { mediaType: layerMediaType(compression), digest: b.digest, size: b.size } : l;
  });
  const bytes = new TextEncoder().encode(JSON.stringify({ ...manifest, layers }));
  return { bytes, digest: sha256(bytes), size: bytes.length, mediaType };
}

async function planLayers(store: Store, ownRoot: ManifestResult, compression: PushCompression, cache: BlobInfoCache): Promise<LayerPlan> {
  const manifest = parseManifest(ownRoot.bytes, `manifest ${ownRoot.digest}`);
  const todo = manifest.layers.flatMap((l, i) => ((layerCompression(l.mediaType) ?? "none") === compression ? [] : [i]));
  const config = await store.content.readBytes(manifest.config.digest, manifest.config.size);
  const diffIDs = parseImageConfig(config, `config ${manifest.config.digest}`).rootfs.diff_ids;
  const chain = chainIds(diffIDs);
  const known = new Map<number, { digest: Digest; size: number }>();
  for (const i of todo) {
    if (compression === "none") known.set(i, { digest: diffIDs[i]!, size: (await store.layers.get(chain[i]!)).size });
    else {
      const c = cache.compressedOf(diffIDs[i]!).find((b) => b.compression === compression && b.size !== undefined);
      if (c) known.set(i, { digest: c.digest, size: c.size! });
    }
  }
  const plan: LayerPlan = { manifest, compression, diffIDs, chain, todo, known };
  if (todo.length === 0) plan.predicted = ownRoot;
  else if (known.size === todo.length) plan.predicted = convertedManifest(manifest, ownRoot.mediaType, compression, known);
  return plan;
}

/**
 * Put every layer the plan converts into the repository (see the module
 * doc), and return the manifest that names the converted blobs, with a
 * source that produces them (the copy then finds them there by HEAD). The
 * store's own manifest when no layer needs converting.
 */
async function convertLayers(
  store: Store,
  repo: Repository,
  own: ImageSource,
  ownRoot: ManifestResult,
  plan: LayerPlan,
  compress: Compress,
  cache: BlobInfoCache,
  opts: PushOptions,
): Promise<PushPlan> {
  const { compression, diffIDs, chain, todo } = plan;
  const sent = new Map<Digest, TransferredBlob>();
  if (todo.length === 0) return { source: own, root: ownRoot, sent };
  const signal = opts.signal;
  const emit = (e: RegistryEvent) => opts.onProgress?.(e);
  /** The layer's tar, converted, from `offset` of the converted bytes. */
  const source = (i: number) => (offset: number) => fromOffset(convertedLayer(store, chain[i]!, compression, compress), offset);

  const blobs = new Map<number, { digest: Digest; size: number }>();
  const mediaType = layerMediaType(compression);
  const limit = pLimit(opts.concurrency ?? 4);
  await Promise.all(
    todo.map((i) =>
      limit(async () => {
        const diffID = diffIDs[i]!;
        const desc = plan.known.get(i);
        let result: TransferredBlob | undefined;
        emit({ type: "blob-start", digest: diffID, size: desc?.size ?? 0, mediaType });
        const onProgress = (bytes: number) => emit({ type: "blob-progress", digest: diffID, size: desc?.size ?? 0, bytes });
        if (desc) {
          try {
            const r = await repo.uploadBlob(desc, source(i), {
              mountFrom: cache.candidates(repo.domain, desc.digest, repo.path),
              ...(signal ? { signal } : {}),
              onProgress,
            });
            result = { ...desc, status: r.status, bytes: r.bytes, ...(r.mountedFrom ? { mountedFrom: r.mountedFrom } : {}) };
          } catch (err) {
            // compressed again, the bytes came out otherwise (another zlib): send them as they are now
            if (!hasCode(err, "ERR_DIGEST_MISMATCH") || compression === "none") throw err;
          }
        }
        if (!result) {
          const r = await repo.uploadStream(source(i)(0), { ...(signal ? { signal } : {}), onProgress });
          cache.recordDiffId(r.digest, diffID, compression, r.size);
          result = { digest: r.digest, size: r.size, status: "uploaded", bytes: r.size };
        }
        cache.recordKnown(repo.domain, repo.path, result.digest);
        emit({ type: "blob-done", digest: diffID, size: result.size, mediaType, status: result.status, bytes: result.bytes, ...(result.mountedFrom ? { mountedFrom: result.mountedFrom } : {}) });
        blobs.set(i, { digest: result.digest, size: result.size });
        sent.set(result.digest, result);
      }),
    ),
  );

  const root = convertedManifest(plan.manifest, ownRoot.mediaType, compression, blobs);
  const byDigest = new Map([...blobs].map(([i, b]) => [b.digest, i]));
  return {
    root,
    sent,
    source: {
      ...own,
      manifest: async (d) => (d.digest === root.digest ? root.bytes : own.manifest(d)),
      blob: (d, offset, s) => {
        const i = byDigest.get(d.digest);
        return i === undefined ? own.blob(d, offset, s) : source(i)(offset);
      },
    },
  };
}

/**
 * Layer `chainID`'s tar, converted by `compress`. gzip reads a layer stored as
 * a plain tar from its file straight into its blocks (no stream chunks to
 * allocate and copy: on the registry bench's push the calling thread is the
 * busiest).
 */
async function* convertedLayer(store: Store, chainID: Digest, compression: PushCompression, compress: Compress): AsyncGenerator<Uint8Array> {
  const { blob } = await store.layers.get(chainID);
  if (compression !== "gzip" || layerCompression(blob.mediaType) !== "none") {
    yield* compress(await store.layers.openUncompressed(chainID));
    return;
  }
  const reader = await store.content.openReader(blob.digest);
  try {
    yield* parallelGzip(reader);
  } finally {
    await reader.close();
  }
}

/**
 * The manifest (or index) that a pull or an earlier push recorded for image
 * `id` in `ref`'s repository (`name@digest`), when the registry still has it
 * and, for a manifest, it names the image's config. Pushing it instead of the
 * store's own manifest keeps the digest the registry's users know: a re-push
 * of a pulled image changes nothing (the store keeps its own OCI manifest,
 * whose bytes differ from a Docker v2 manifest with the same blobs). `ours`:
 * the manifest the push would send, when known before sending.
 */
async function recordedManifest(
  store: Store,
  repo: Repository,
  ref: Reference,
  id: Digest,
  ours: Digest | undefined,
  signal: AbortSignal | undefined,
): Promise<ManifestResult | undefined> {
  const prefix = `${ref.name}@`;
  const digests = (await store.references.referencesOf(id)).filter((r) => r.startsWith(prefix)).map((r) => r.slice(prefix.length));
  // the manifest this push makes is what the repository knows: no need to ask
  if (ours !== undefined && digests.includes(ours)) return undefined;
  for (const digest of digests) {
    let m: ManifestResult;
    try {
      m = await repo.getManifest(digest, signal ? { signal } : {});
    } catch (err) {
      if (hasCode(err, "ERR_MANIFEST_NOT_FOUND")) continue;
      throw err;
    }
    if (INDEX_MEDIA_TYPES.has(m.mediaType) || parseManifest(m.bytes, `manifest ${m.digest}`).config.digest === id) return m;
  }
  return undefined;
}
