/**
 * BuildKit's registry cache, imported (`--cache-from type=registry,ref=…`):
 * the cache manifest a registry holds under a tag — the image-manifest form
 * (an OCI manifest whose config is `application/vnd.buildkit.cacheconfig.v0`,
 * its layers the cache's blobs), the older index form (an index listing the
 * blobs and the cacheconfig), or an image with an inline cache — read through
 * `@berth/cache`'s importer with the registry as its fetcher. Lazy: the
 * manifest and the cache config are read up front, a layer blob only when a
 * lookup needs it. A blob the registry cannot give is a miss with a warning,
 * not a failure (buildkit#2836); content that does not verify still fails.
 * {@link withCacheSource} is `berth cache import`'s rule for what its
 * argument names: this registry cache, an OCI layout, or a store image.
 * @module
 */
import { stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { type BlobRef, CacheErrorCode, type CacheImport, type CacheManager, contentStoreFetcher, type Fetcher, importCache, verifyBytes } from "@berth/cache";
import { type Digest, FailedPreconditionError, NotFoundError, parseDigest } from "@berth/digest";
import type { Store } from "@berth/image-store";
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MEDIA_TYPE_OCI_MANIFEST, parseReference } from "@berth/oci";
import type { ManifestResult, Repository } from "@berth/registry";
import { type RegistryOptions, withClient } from "./registry.js";

/** Options of {@link withRegistryCache}. */
export interface RegistryCacheOptions extends Pick<RegistryOptions, "client" | "insecure" | "credential" | "signal"> {
  /** Record looked-up chains as cache records (see `importCache`). */
  manager?: CacheManager;
  /** Parallel blob fetches per lookup. Default 4. */
  concurrency?: number;
  /** A lookup that became a miss because a blob could not be fetched. */
  onWarning?(message: string): void;
}

/** Configs and manifests of a cache are small; layers stream. */
const MAX_DOCUMENT = 16 << 20;

/**
 * Read the cache manifest `name` (`host/repo:tag` or `@digest`) names and run
 * `fn` with the importer while the registry connection is open (lookups fetch
 * lazily, so they belong inside `fn`).
 * @throws the registry's errors (`ERR_MANIFEST_NOT_FOUND`, …); `@berth/cache`'s
 *   (`ERR_INVALID_CACHE_CONFIG`, `ERR_NO_INLINE_CACHE`)
 */
export async function withRegistryCache<T>(
  store: Store,
  name: string,
  opts: RegistryCacheOptions,
  fn: (cache: CacheImport, manifest: { digest: Digest; mediaType: string }) => Promise<T>,
): Promise<T> {
  const ref = parseReference(name);
  return withClient(opts, async (client) => {
    const repo = client.repository(ref);
    const call = opts.signal ? { signal: opts.signal } : {};
    const top = await repo.getManifest(ref.digest ?? ref.tag ?? "latest", call);
    const imp = await importCache(store, registryFetcher(repo, top, opts.signal), {
      manifest: { digest: top.digest, size: top.size, mediaType: top.mediaType },
      ...(opts.manager ? { manager: opts.manager } : {}),
      ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
      onFetchError: (key, err) => opts.onWarning?.(`cache ${key}: a blob could not be fetched from ${ref.name} (${(err as Error).message}); treated as a miss`),
    });
    return fn(imp, { digest: top.digest, mediaType: top.mediaType });
  });
}

/** Options of {@link withCacheSource}: the registry's, and the layout's manifest choice. */
export interface CacheSourceOptions extends RegistryCacheOptions {
  /** For an OCI layout: which manifest of its `index.json` (default: the only one, or `latest`). */
  tag?: string;
}

/**
 * Open the BuildKit cache `source` names, as `berth cache import` takes it,
 * and run `fn` with the importer while its source is open:
 * `docker://HOST/REPO:TAG` a registry cache ({@link withRegistryCache}); an
 * existing path an OCI layout directory or tar; an image of the store its
 * inline cache. An argument that looks like a path (`./x`, `/x`, `x.tar`)
 * but is not there is a missing file, not an image name.
 * @throws NotFoundError `ENOENT` for such a path; the store's `ERR_IMAGE_NOT_FOUND`;
 *   what {@link withRegistryCache} and `importCache` throw
 */
export async function withCacheSource<T>(
  store: Store,
  source: string,
  opts: CacheSourceOptions,
  fn: (cache: CacheImport) => Promise<T>,
): Promise<T> {
  if (source.startsWith("docker://")) return withRegistryCache(store, source.slice("docker://".length), opts, (imp) => fn(imp));
  const common = { ...(opts.manager ? { manager: opts.manager } : {}), ...(opts.concurrency ? { concurrency: opts.concurrency } : {}) };
  if (await stat(source).then(() => true, () => false)) return fn(await importCache(store, source, { ...common, ...(opts.tag ? { tag: opts.tag } : {}) }));
  if (/^\.{0,2}\//.test(source) || /\.tar(\.gz)?$/.test(source)) {
    throw new NotFoundError(`${source}: no such file or directory`, { code: "ENOENT" });
  }
  const m = await store.images.manifest(await store.references.resolve(source));
  const manifest = { digest: m.digest, size: m.bytes.length, mediaType: m.manifest.mediaType ?? MEDIA_TYPE_OCI_MANIFEST };
  return fn(await importCache(store, contentStoreFetcher(store.content), { ...common, manifest }));
}

/** `@berth/cache`'s Fetcher over a repository: manifests through the manifest endpoint, blobs through the blob one. */
export function registryFetcher(repo: Repository, top: ManifestResult, signal?: AbortSignal): Fetcher {
  const size = async (desc: BlobRef): Promise<number> => {
    if (desc.size !== undefined) return desc.size;
    const head = await repo.headBlob(parseDigest(desc.digest), signal ? { signal } : {});
    if (!head) throw new NotFoundError(`blob ${desc.digest} not found in ${repo.name}`, { code: CacheErrorCode.BLOB_NOT_FOUND, details: { digest: desc.digest } });
    return head.size;
  };
  return {
    async fetch(desc: BlobRef): Promise<Readable> {
      return repo.openBlob({ digest: parseDigest(desc.digest), size: await size(desc) }, { unverified: true, ...(signal ? { signal } : {}) });
    },
    async readBytes(desc: BlobRef & { mediaType?: string }, maxSize: number): Promise<Uint8Array> {
      if (desc.digest === top.digest) return top.bytes;
      if (desc.mediaType && (MANIFEST_MEDIA_TYPES.has(desc.mediaType) || INDEX_MEDIA_TYPES.has(desc.mediaType))) {
        return (await repo.getManifest(parseDigest(desc.digest), signal ? { signal } : {})).bytes;
      }
      const n = await size(desc);
      const limit = Math.min(maxSize, MAX_DOCUMENT);
      if (n > limit) throw new FailedPreconditionError(`blob ${desc.digest} is larger than ${limit} bytes`, { code: CacheErrorCode.BLOB_TOO_LARGE, details: { digest: desc.digest } });
      const chunks: Uint8Array[] = [];
      for await (const c of repo.blobChunks({ digest: parseDigest(desc.digest), size: n }, signal ? { signal } : {})) chunks.push(c);
      return verifyBytes(new Uint8Array(Buffer.concat(chunks)), { digest: desc.digest, size: n });
    },
  };
}
