/**
 * BuildKit's registry and local cache, exported (`--cache-to
 * type=registry,ref=…,image-manifest=true` / `type=local,dest=…`): the records
 * `@berth/cache`'s `planCacheExport` turns into a cache config and an OCI
 * manifest, copied like an image to a registry (`docker://HOST/REPO:TAG`: a
 * HEAD before every blob, a mount from a repository of the same registry the
 * blob-info cache knows it in, parallel uploads) or into an OCI layout
 * (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, or a bare directory path;
 * tagged `latest` when no tag is given, as BuildKit's local cache). Layer blobs
 * go as stored. {@link copyCache} relays a cache: import from any source
 * `berth cache import` takes, look every key up, export what resolved.
 * @module
 */
import { type CacheImport, type ExportRecord, planCacheExport } from "@berth/cache";
import type { Digest } from "@berth/digest";
import type { Store } from "@berth/image-store";
import { copyImage, type ImageLocation, type ImageSource, openDestination, parseImageLocation } from "@berth/registry";
import { describeLocation } from "./copy.js";
import { contentFrom, type RegistryOptions, type TransferredBlob, transferred, withBlobInfoCache, withClient } from "./registry.js";
import { type CacheSourceOptions, withCacheSource } from "./registry-cache.js";

/** Options of {@link exportCache}. */
export interface ExportCacheOptions extends RegistryOptions {
  /** Result time of records without their own `createdAt` (default now). */
  now?: Date;
}

/** What {@link exportCache} wrote. */
export interface ExportCacheResult {
  /** The destination, as skopeo names it (`docker://…`, `oci:…`). */
  destination: string;
  /** The cache manifest (image-manifest form) and its config. */
  digest: Digest;
  size: number;
  configDigest: Digest;
  /** Records exported, and of those the ones with a layer result. */
  records: number;
  results: number;
  /** Every blob (config and layers) with what the destination did with it. */
  blobs: TransferredBlob[];
  /** 0 when the destination had the manifest under the tag already. */
  manifestsWritten: number;
}

/** `docker://…`, `oci:…`, `oci-archive:…`, or a bare path (an OCI layout directory, tagged `latest`). */
function cacheDestination(dest: string): ImageLocation {
  if (/^(docker:\/\/|oci:|oci-archive:)/.test(dest)) {
    const loc = parseImageLocation(dest);
    return loc.transport !== "docker" && loc.refName === undefined ? { ...loc, refName: "latest" } : loc;
  }
  return { transport: "oci", dir: dest, refName: "latest" };
}

/**
 * Export `records` (cache keys, their input links, the ChainIDs of their
 * results in the store) to `dest` in BuildKit's image-manifest form.
 * @throws InvalidArgumentError `ERR_INVALID_CACHE_RECORD` (see `planCacheExport`),
 *   `ERR_INVALID_LOCATION`; the layer store's `ERR_LAYER_NOT_FOUND`; the registry's errors
 */
export async function exportCache(store: Store, records: readonly ExportRecord[], dest: string, opts: ExportCacheOptions = {}): Promise<ExportCacheResult> {
  const loc = cacheDestination(dest);
  const plan = await planCacheExport(store, records, opts.now ? { now: opts.now } : {});
  const root = { bytes: plan.manifest.bytes, digest: plan.manifest.digest, size: plan.manifest.size, mediaType: plan.manifest.mediaType };
  const source: ImageSource = {
    description: "berth cache export",
    root: async () => root,
    manifest: async () => root.bytes,
    blob: (desc, offset) =>
      desc.digest === plan.config.digest
        ? (async function* () {
            yield plan.config.bytes.subarray(offset);
          })()
        : contentFrom(store, desc.digest, offset),
  };
  return withBlobInfoCache(store, undefined, (cache) =>
    withClient(opts, async (client) => {
      const { destination, tag } = await openDestination(loc, client);
      let ok = false;
      try {
        const copied = await copyImage(source, destination, {
          ...(tag !== undefined ? { tag } : {}),
          blobInfoCache: cache,
          learnDiffIds: false,
          ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        });
        ok = true;
        return {
          destination: describeLocation(loc),
          digest: copied.digest,
          size: copied.size,
          configDigest: plan.config.digest,
          records: plan.records,
          results: plan.results,
          blobs: copied.blobs.map(transferred),
          manifestsWritten: copied.manifestsWritten,
        };
      } finally {
        await destination.close?.(ok);
      }
    }),
  );
}

/** Options of {@link copyCache}: the source's and the destination's. */
export interface CopyCacheOptions extends CacheSourceOptions, Omit<ExportCacheOptions, "signal" | "onProgress"> {
  onProgress?: ExportCacheOptions["onProgress"];
}

/** What {@link copyCache} did. */
export interface CopyCacheResult extends ExportCacheResult {
  /** Keys the source names, and of those the ones whose chain it could give. */
  keys: number;
  found: number;
}

/**
 * Relay a BuildKit cache: open `source` as `berth cache import` does
 * (`docker://…`, an OCI layout directory or tar, an image with inline cache),
 * look every key up (fetching the layers into the store), and export the keys
 * with their input links and the chains that resolved to `dest`
 * ({@link exportCache}). A key whose layers the source cannot give is exported
 * without a result (its links still hold), with a warning.
 */
export async function copyCache(store: Store, source: string, dest: string, opts: CopyCacheOptions = {}): Promise<CopyCacheResult> {
  const { onProgress, now, ...from } = opts;
  cacheDestination(dest); // a bad destination fails before any lookup fetches a layer
  return withCacheSource(store, source, from, async (imp: CacheImport) => {
    const records: ExportRecord[] = [];
    let found = 0;
    for (const key of imp.keys()) {
      const inputs = imp.inputs(key);
      const chain = imp.probe(key) ? await imp.lookup(key) : undefined;
      await chain?.ref?.release();
      if (chain) found++;
      const createdAt = imp.chains(key)[0]?.createdAt;
      records.push({ key, ...(inputs.length ? { inputs } : {}), ...(chain ? { chainID: chain.chainID } : {}), ...(chain && createdAt ? { createdAt } : {}) });
    }
    const exported = await exportCache(store, records, dest, {
      ...(from.client ? { client: from.client } : {}),
      ...(from.insecure ? { insecure: true } : {}),
      ...(from.credential ? { credential: from.credential } : {}),
      ...(from.concurrency ? { concurrency: from.concurrency } : {}),
      ...(from.signal ? { signal: from.signal } : {}),
      ...(onProgress ? { onProgress } : {}),
      ...(now ? { now } : {}),
    });
    return { ...exported, keys: imp.keys().length, found };
  });
}
