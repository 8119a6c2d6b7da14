/**
 * `docker pull` and `docker push` between the store and an OCI registry,
 * through `@berth/registry`'s copy engine: the store is one more end of a
 * copy, beside a registry repository and an OCI layout.
 *
 * Pull resolves the reference (an index: the manifest for the platform), reads
 * the config first (as docker does: its DiffIDs say which layers the store
 * already has), then lets `copyImage` stream the missing layer blobs, four at
 * a time, into the layer store's ingest (phase 1: verified by digest, size and
 * DiffID before anything is visible), and records the layers in chain order,
 * creates the image and sets the tag and the `name@digest` reference
 * (`RepoDigests`) through a `LoadTransaction` — the path `docker load`
 * commits by — so a failure undoes the image and tags and leaves only garbage
 * under the released lease. The registry's blobs are kept as they are.
 *
 * Push is a copy from the store (the image's OCI manifest, its config and
 * its layer blobs as stored) to a registry repository: HEAD before every
 * upload, so a second push of an unchanged image sends no blob; afterwards
 * the store records `name@digest` as docker does. An image pulled from the
 * same repository goes back under the manifest it was pulled with (its
 * RepoDigest), so the digest does not change.
 * @module
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { chainIds, type Digest, FailedPreconditionError, hasCode, sha256 } from "@berth/digest";
import { LoadTransaction } from "@berth/docker-archive";
import type { Store } from "@berth/image-store";
import type { LayerBlobFacts } from "@berth/layer-store";
import {
  type Descriptor,
  formatPlatform,
  hostPlatform,
  IMAGE_CONFIG_MEDIA_TYPES,
  INDEX_MEDIA_TYPES,
  layerCompression,
  MEDIA_TYPE_OCI_MANIFEST,
  type OciManifest,
  parseImageConfig,
  parseIndex,
  parseManifest,
  parsePlatform,
  parseReference,
  platformMatches,
  platformSpecOf,
  type Reference,
} from "@berth/oci";
import {
  BlobInfoCache,
  type CopyEvent,
  copyImage,
  type CopyResult,
  type Credential,
  dockerCredentials,
  type ImageDestination,
  type ImageSource,
  type ManifestResult,
  type PutBlobContext,
  type PutBlobResult,
  RegistryClient,
  type Repository,
  registrySource,
  selectManifest,
  verifyBytes,
} from "@berth/registry";
import { ImageServiceErrorCode } from "./errors.js";
import { removePartialDownloads, withPartialDownload } from "./partial.js";

/** Configs larger than this are refused (containerd's and crane's manifest limit is 4 MiB; configs get more room). */
const MAX_CONFIG_SIZE = 16 << 20;
/** Manifests read from the store's content. */
const MAX_MANIFEST_SIZE = 4 << 20;

/** Progress of a pull or push: what was resolved, then `copyImage`'s events. */
export type RegistryEvent =
  | {
      type: "resolved";
      /** The normalised reference (`docker.io/library/busybox:latest`). */
      reference: string;
      /** Its repository (`docker.io/library/busybox`), the path in the registry (`library/busybox`) and the tag, unless a digest names the image. */
      name: string;
      path: string;
      tag?: string;
      /**
       * The manifest (or, for a pull of an index, the index) the reference
       * names. A push that compresses layers on the way does not know it yet
       * (unless the blob-info cache predicts it): then the store's manifest;
       * the result has the one sent.
       */
      digest: Digest;
      mediaType: string;
      /** A pull of an index: the platform of the manifest chosen. */
      platform?: string;
      /** The image's layers, bottom first; a push names the layers it compresses on the way by DiffID, as its progress events do. */
      layers: Descriptor[];
      /**
       * A pull: the store already holds this image (its ID, so its layers),
       * and nothing needs fetching but references — what dockerd checks
       * before it reports any layer step (`docker pull` of an image it has
       * shows no layer lines).
       */
      present?: boolean;
    }
  | CopyEvent;

/** Options both directions share. */
export interface RegistryOptions {
  /** The client to use (kept open). Default: a new one with Docker's credentials (`config.json`, helpers), closed at the end. */
  client?: RegistryClient;
  /** Reach every registry without TLS verification, falling back to plain http (loopback registries always are). */
  insecure?: boolean;
  /**
   * The credential to use with the registry instead of Docker's (`config.json`,
   * helpers): what a daemon does with its client's `X-Registry-Auth`. Ignored
   * with `client`.
   */
  credential?: Credential;
  /** Blobs in flight at once. Default 4. */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?(event: RegistryEvent): void;
}

/** Options of {@link pullImage}. */
export interface PullOptions extends RegistryOptions {
  /** Where the pull records which blobs the repository has and each layer's DiffID (kept open). Default: the store's, flushed at the end. */
  blobInfoCache?: BlobInfoCache;
  /** `os/arch[/variant]` to choose from an index (and to require of a single image). Default: this machine's (linux/<arch>). */
  platform?: string;
}

/** One blob of a pull or push and what happened to it. */
export interface TransferredBlob {
  digest: Digest;
  size: number;
  /** `exists`: nothing sent (the store or registry had it); `mounted`: from another repository; `written`/`uploaded`: sent. */
  status: PutBlobResult["status"];
  /** Bytes read from the source for it. */
  bytes: number;
  mountedFrom?: string;
}

/** What {@link pullImage} did. */
export interface PullResult {
  /** The normalised reference pulled (`docker.io/library/busybox:latest`). */
  reference: string;
  /** Docker's short form (`busybox:latest`). */
  familiar: string;
  /** The repository (`docker.io/library/busybox`) and its path in the registry (`library/busybox`). */
  name: string;
  path: string;
  /** The tag pulled, unless the reference has a digest. */
  tag?: string;
  /** The digest the reference names at the registry (the index's for a multi-platform image): `name@digest` is now a RepoDigest. */
  digest: Digest;
  /** The manifest copied (the chosen one of an index, else `digest`). */
  manifestDigest: Digest;
  /** For an index: the platform chosen. */
  platform?: string;
  /** The image ID. */
  id: Digest;
  /** `up-to-date`: the reference named this image before the pull. */
  status: "downloaded" | "up-to-date";
  /** The config and the layers. */
  blobs: TransferredBlob[];
  /** Blob bytes downloaded. */
  bytesTransferred: number;
}

/**
 * Pull `name` (`busybox`, `127.0.0.1:5000/team/app:1`, `app@sha256:…`) from
 * its registry into the store, as `docker pull` does.
 * @throws InvalidArgumentError `ERR_INVALID_REFERENCE`, `ERR_INVALID_PLATFORM`;
 *   FailedPreconditionError `ERR_UNSUPPORTED_IMAGE` (not an image: an artifact, foreign layers),
 *   `ERR_PLATFORM_MISMATCH`, `ERR_NO_MATCHING_PLATFORM`; the registry's errors
 *   (`ERR_MANIFEST_NOT_FOUND`, `ERR_REGISTRY_UNAVAILABLE`, `ERR_REGISTRY_UNAUTHORIZED`, …);
 *   `ERR_DIGEST_MISMATCH` (blob digest or DiffID) / `ERR_SIZE_MISMATCH` for content that does not verify
 */
export async function pullImage(store: Store, name: string, opts: PullOptions = {}): Promise<PullResult> {
  const ref = parseReference(name);
  return withClient(opts, async (client) => {
    const repo = client.repository(ref);
    const { root, manifest, parsed, config, platform } = await resolveRemoteImage(store, repo, ref, opts);
    const tag = ref.digest === undefined ? ref.tag : undefined;
    if (opts.onProgress) opts.onProgress(resolvedEvent(ref, root, parsed.layers, platform, await store.images.has(parsed.config.digest)));

    const refs = [...(tag !== undefined ? [`${ref.name}:${tag}`] : []), `${ref.name}@${root.digest}`];
    const before = await resolveOrUndefined(store, refs[0]!);
    const copied = await storeImage(store, registrySource(repo, manifest.digest), { manifest, parsed, config }, refs, { ...opts, resumable: true });
    // what the repository has, and each layer's DiffID: a later push of the image mounts instead of uploading
    await withBlobInfoCache(store, opts.blobInfoCache, async (cache) => {
      const diffIDs = parseImageConfig(config, `config ${parsed.config.digest}`).rootfs.diff_ids;
      for (const d of [parsed.config, ...parsed.layers]) cache.recordKnown(repo.domain, repo.path, d.digest);
      for (const [i, l] of parsed.layers.entries()) cache.recordDiffId(l.digest, diffIDs[i]!, layerCompression(l.mediaType) ?? "unknown", l.size);
    });
    return {
      reference: ref.string,
      familiar: ref.familiar,
      name: ref.name,
      path: ref.path,
      ...(tag !== undefined ? { tag } : {}),
      digest: root.digest,
      manifestDigest: manifest.digest,
      ...(platform ? { platform } : {}),
      id: copied.id,
      status: before === copied.id ? "up-to-date" : "downloaded",
      blobs: copied.blobs.map(transferred),
      bytesTransferred: copied.bytesTransferred,
    };
  });
}

/**
 * Copy one resolved image from `source` into the store and point `refs` at
 * it, in a `LoadTransaction` (rolled back on failure: nothing half-written
 * stays visible and no reference moves). The source is asked for the
 * manifest already read as its root, and the config is not fetched again.
 */
export async function storeImage(
  store: Store,
  source: ImageSource,
  image: Pick<RemoteImage, "manifest" | "parsed" | "config">,
  refs: readonly string[],
  opts: { concurrency?: number; signal?: AbortSignal; onProgress?(event: CopyEvent): void; resumable?: boolean } = {},
): Promise<CopyResult & { id: Digest }> {
  const { manifest, parsed, config } = image;
  const diffIDs = parseImageConfig(config, `config ${parsed.config.digest}`).rootfs.diff_ids;
  const id = sha256(config);
  const tx = await LoadTransaction.begin(store);
  try {
    const plan = { manifest: parsed, config, id, chain: chainIds(diffIDs), diffIDs, refs, resumable: opts.resumable === true };
    const destination = new StoreDestination(store, tx, plan);
    const copied = await copyImage({ ...source, root: async () => manifest }, destination, {
      ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    if (plan.resumable) await removePartialDownloads(store.root, parsed.layers.map((l) => l.digest));
    return { ...copied, id };
  } catch (err) {
    await tx.rollback();
    throw err;
  } finally {
    await tx.end();
  }
}

/**
 * The store's image `id` as the source of a copy: its OCI manifest (the one
 * the store wrote when the image was created; its digest is stable), the
 * config and the layer blobs as stored.
 */
export function storeSource(store: Store, id: Digest, description = `berth:${id}`): ImageSource {
  return {
    description,
    async root() {
      const m = await store.images.manifest(id);
      return { bytes: m.bytes, digest: m.digest, size: m.bytes.length, mediaType: m.manifest.mediaType ?? MEDIA_TYPE_OCI_MANIFEST };
    },
    async manifest(desc) {
      const bytes = await store.content.readBytes(desc.digest, MAX_MANIFEST_SIZE);
      verifyBytes(bytes, desc, "manifest");
      return bytes;
    },
    blob: (desc, offset) => contentFrom(store, desc.digest, offset),
  };
}

/** A stored blob's bytes from `offset` (what store sources send). */
export async function* contentFrom(store: Store, digest: Digest, offset: number): AsyncGenerator<Uint8Array> {
  yield* fromOffset(await store.content.open(digest), offset);
}

/** The chunks of `source` from byte `offset` on. */
export async function* fromOffset(source: AsyncIterable<Uint8Array>, offset: number): AsyncGenerator<Uint8Array> {
  let skip = offset;
  for await (const chunk of source) {
    const c = chunk as Uint8Array;
    if (skip >= c.length) {
      skip -= c.length;
      continue;
    }
    yield skip > 0 ? c.subarray(skip) : c;
    skip = 0;
  }
}

/** Options of {@link importStoredManifest}. */
export interface ImportStoredOptions {
  signal?: AbortSignal;
}

/**
 * Make the image an image manifest names when its config and layer blobs are
 * already in the store's content (a registry push into `berth serve`), and
 * point `refs` at it: the path of a pull ({@link StoreDestination} under a
 * `LoadTransaction`), with the content store as the source. Each layer blob
 * is read back once to learn and verify its DiffID; a layer the store has is
 * not read. Resolves with the image ID.
 * @throws FailedPreconditionError `ERR_UNSUPPORTED_IMAGE` (not an image: the config is not an image config, foreign layers);
 *   the stores' errors (`ERR_BLOB_NOT_FOUND`, `ERR_DIGEST_MISMATCH` for a DiffID that does not verify, `ERR_INVALID_TAR`, …)
 */
export async function importStoredManifest(
  store: Store,
  manifest: { bytes: Uint8Array; digest: Digest; mediaType: string },
  refs: readonly string[],
  opts: ImportStoredOptions = {},
): Promise<Digest> {
  // a manifest, not an index: the registry face imports what was pushed, one image at a time
  parseManifest(manifest.bytes, `manifest ${manifest.digest}`);
  const source: ImageSource = {
    description: `berth content ${manifest.digest}`,
    root: async () => ({ bytes: manifest.bytes, digest: manifest.digest, size: manifest.bytes.length, mediaType: manifest.mediaType }),
    manifest: async (d) => store.content.readBytes(d.digest, MAX_MANIFEST_SIZE),
    blob: (d, offset) => contentFrom(store, d.digest, offset),
  };
  const call = opts.signal ? { signal: opts.signal } : {};
  const image = await resolveSourceImage(store, source, `manifest ${manifest.digest}`, call);
  return (await storeImage(store, source, image, refs, call)).id;
}

/** What the store destination of a pull knows before the copy starts. */
interface PullPlan {
  manifest: OciManifest;
  config: Uint8Array;
  id: Digest;
  diffIDs: readonly Digest[];
  /** ChainIDs of the layers, bottom first. */
  chain: readonly Digest[];
  /** References to point at the image (the tag, `name@digest`). */
  refs: readonly string[];
  /** Layer blobs go through partial-download files (a registry source: see `partial.ts`). */
  resumable: boolean;
}

/**
 * The store as the destination of a pull of one image: layer blobs stream
 * into the layer store's ingest (verified, under the transaction's lease;
 * a layer whose chain the store has is not fetched), then the manifest
 * records the layers in chain order, creates the image and sets the
 * references through the transaction.
 */
class StoreDestination implements ImageDestination {
  readonly description = "berth store";
  /** A layer's chunks go to the layer store's ingest, which gathers them itself (into its worker's 1 MiB pieces). */
  readonly gathers = true;
  readonly #facts = new Map<Digest, LayerBlobFacts>();

  constructor(
    readonly store: Store,
    readonly tx: LoadTransaction,
    readonly plan: PullPlan,
  ) {}

  async putBlob(desc: { digest: Digest; size: number }, source: (offset: number) => AsyncIterable<Uint8Array>, ctx: PutBlobContext): Promise<PutBlobResult> {
    const { store, tx, plan } = this;
    if (desc.digest === plan.manifest.config.digest) {
      const r = await store.content.put(plan.config, desc, { lease: tx.lease });
      return { status: r.existed ? "exists" : "written", bytes: 0 };
    }
    const at = plan.manifest.layers.flatMap((l, i) => (l.digest === desc.digest ? [i] : []));
    if (at.length === 0) throw unsupported(`blob ${desc.digest} is not a layer of manifest`);
    if ((await Promise.all(at.map((i) => store.layers.has(plan.chain[i]!)))).every(Boolean)) return { status: "exists", bytes: 0 };
    const ingest = (chunks: AsyncIterable<Uint8Array>, onIngestFile?: (path: string) => Promise<void>) =>
      store.layers.ingestLayer(chunks, {
        expectedDigest: desc.digest,
        expectedSize: desc.size,
        expectedDiffID: plan.diffIDs[at[0]!]!,
        lease: tx.lease,
        name: `layer ${desc.digest}`,
        // hashed, decompressed and written on worker threads: this thread reads the layers' sockets
        offThread: true,
        ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
        ...(onIngestFile ? { onIngestFile } : {}),
      });
    if (plan.resumable && (await store.content.has(desc.digest))) {
      // a blob the store holds (pushed to berth serve, pulled for another image) is scanned where it
      // is, not fetched: the ingest takes the stored copy (and lets this source go after one chunk)
      this.#facts.set(desc.digest, await ingest(contentFrom(store, desc.digest, 0)));
      return { status: "exists", bytes: 0 };
    }
    if (!plan.resumable) {
      this.#facts.set(desc.digest, await ingest(source(0)));
      return { status: "written", bytes: desc.size };
    }
    return withPartialDownload(store.root, desc, source, async ({ resumedFrom, chunks, keep }) => {
      // the ingest's file is kept as the partial download: each byte written once
      this.#facts.set(desc.digest, await ingest(chunks, keep));
      return { status: "written", bytes: desc.size - resumedFrom, ...(resumedFrom > 0 ? { resumedFrom } : {}) };
    });
  }

  /** The image is there and every reference names it. */
  async hasManifest(_desc: Descriptor, where: { root: boolean }): Promise<boolean> {
    if (!where.root || !(await this.store.images.has(this.plan.id))) return false;
    for (const r of this.plan.refs) if ((await resolveOrUndefined(this.store, r)) !== this.plan.id) return false;
    return true;
  }

  async putManifest(): Promise<void> {
    const { store, tx, plan } = this;
    for (const [i, layer] of plan.manifest.layers.entries()) {
      if (await store.layers.has(plan.chain[i]!)) continue;
      const facts = this.#facts.get(layer.digest);
      // without facts the layer was there when its blob was skipped: `create` names it if it went since
      if (facts) await store.layers.recordLayer(facts, i === 0 ? null : plan.chain[i - 1]!, { lease: tx.lease });
    }
    const existed = await store.images.has(plan.id);
    await tx.createImages([plan.config], new Set(existed ? [plan.id] : []));
    // a pull moves the tag, as docker's does; a digest reference names this image or nothing
    await tx.tag(plan.refs.map((ref) => ({ ref, id: plan.id, force: !ref.includes("@") })));
  }
}

/** An image resolved at its registry: the manifest (chosen from an index for the platform) and the config, verified. */
export interface RemoteImage {
  /** What the reference names: the index, or the manifest itself. */
  root: ManifestResult;
  /** The image's manifest. */
  manifest: ManifestResult;
  parsed: OciManifest;
  /** The config's bytes (its digest is the image ID) and the parsed config. */
  config: Uint8Array;
  image: ReturnType<typeof parseImageConfig>;
  /** For an index: the platform chosen. */
  platform?: string;
}

/**
 * Resolve `ref` at its registry as `docker pull` does before it fetches a
 * layer: the manifest it names (for an index, the one for the platform), the
 * config (from the store when it has it, else the registry; verified), one
 * DiffID per layer, and a single-platform image of the platform asked for.
 * @throws as {@link pullImage} before its first layer
 */
export function resolveRemoteImage(store: Store, repo: Repository, ref: Reference, opts: { platform?: string; signal?: AbortSignal }): Promise<RemoteImage> {
  return resolveSourceImage(store, registrySource(repo, ref.digest ?? ref.tag ?? "latest"), ref.string, opts);
}

/**
 * {@link resolveRemoteImage} of any copy source (a registry, an OCI layout):
 * `what` names it in errors.
 */
export async function resolveSourceImage(store: Store, source: ImageSource, what: string, opts: { platform?: string; signal?: AbortSignal }): Promise<RemoteImage> {
  const explicit = opts.platform !== undefined ? parsePlatform(opts.platform) : undefined;
  const want = explicit ?? hostPlatform();
  const root = await source.root(opts.signal);
  let manifest: ManifestResult = root;
  let platform: string | undefined;
  if (INDEX_MEDIA_TYPES.has(root.mediaType)) {
    const chosen = selectManifest(parseIndex(root.bytes, `index ${root.digest}`), want, what);
    platform = chosen.platform ? formatPlatform(chosen.platform) : undefined;
    const bytes = await source.manifest(chosen, opts.signal);
    verifyBytes(bytes, chosen, "manifest");
    manifest = { bytes, digest: chosen.digest, size: chosen.size, mediaType: chosen.mediaType };
  }
  const parsed = parseManifest(manifest.bytes, `manifest ${manifest.digest}`);
  const config = await readConfig(store, source, what, parsed, opts.signal);
  const image = parseImageConfig(config, `config ${parsed.config.digest}`);
  const diffIDs = image.rootfs.diff_ids;
  if (diffIDs.length !== parsed.layers.length) {
    throw unsupported(`${what}: the manifest has ${parsed.layers.length} layers, the config ${diffIDs.length} (foreign layers are not supported)`);
  }
  if (explicit && !platform && !platformMatches(explicit, platformSpecOf(image))) {
    throw new FailedPreconditionError(`${what} is for ${formatPlatform(image)}, not ${formatPlatform(explicit)}`, {
      code: ImageServiceErrorCode.PLATFORM_MISMATCH,
      details: { wanted: formatPlatform(explicit), image: formatPlatform(image) },
    });
  }
  return { root, manifest, parsed, config, image, ...(platform ? { platform } : {}) };
}

/** The image config a manifest names, read whole and verified: from the store when it has it (a pull of an image it holds fetches no blob), else from the source. */
async function readConfig(store: Store, source: ImageSource, what: string, manifest: OciManifest, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const desc = manifest.config;
  if (!IMAGE_CONFIG_MEDIA_TYPES.has(desc.mediaType)) throw unsupported(`${what} is not a container image (config media type ${desc.mediaType})`);
  if (desc.size > MAX_CONFIG_SIZE) throw unsupported(`${what}: its config is ${desc.size} bytes (the limit is ${MAX_CONFIG_SIZE})`);
  let bytes: Uint8Array;
  try {
    bytes = await store.content.readBytes(desc.digest, MAX_CONFIG_SIZE);
  } catch (err) {
    if (!hasCode(err, "ERR_BLOB_NOT_FOUND")) throw err;
    const chunks: Uint8Array[] = [];
    for await (const c of source.blob({ digest: desc.digest, size: desc.size }, 0, signal)) chunks.push(c);
    bytes = new Uint8Array(Buffer.concat(chunks));
  }
  verifyBytes(bytes, desc, "config");
  return bytes;
}

function unsupported(message: string): FailedPreconditionError {
  return new FailedPreconditionError(message, { code: ImageServiceErrorCode.UNSUPPORTED_IMAGE });
}

/** The `resolved` event of a pull or push of `ref`: `root` is what the reference names there; `present`: a pull of an image the store holds. */
export function resolvedEvent(ref: Reference, root: { digest: Digest; mediaType: string }, layers: Descriptor[], platform?: string, present?: boolean): RegistryEvent {
  const tag = ref.digest === undefined ? ref.tag : undefined;
  return {
    type: "resolved",
    reference: ref.string,
    name: ref.name,
    path: ref.path,
    ...(tag !== undefined ? { tag } : {}),
    digest: root.digest,
    mediaType: root.mediaType,
    ...(platform ? { platform } : {}),
    layers,
    ...(present !== undefined ? { present } : {}),
  };
}

/** A copied blob as a pull, push or copy reports it. */
export function transferred(b: { digest: Digest; size: number } & PutBlobResult): TransferredBlob {
  return { digest: b.digest, size: b.size, status: b.status, bytes: b.bytes, ...(b.mountedFrom ? { mountedFrom: b.mountedFrom } : {}) };
}

export async function resolveOrUndefined(store: Store, ref: string): Promise<Digest | undefined> {
  try {
    return await store.references.resolve(ref);
  } catch (err) {
    if (hasCode(err, "ERR_IMAGE_NOT_FOUND")) return undefined;
    throw err;
  }
}

/** Run `fn` with `opts.client`, or with a new client (Docker's credentials) closed afterwards. */
export async function withClient<T>(opts: Pick<RegistryOptions, "client" | "insecure" | "credential">, fn: (client: RegistryClient) => Promise<T>): Promise<T> {
  if (opts.client) return fn(opts.client);
  const credential = opts.credential;
  const client = new RegistryClient({
    credentials: credential ? async () => credential : dockerCredentials(),
    ...(opts.insecure ? { insecure: true } : {}),
  });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Where the store keeps its blob-info cache, under its root. */
export const BLOB_INFO_CACHE_DIR = join("cache", "registry");

/** Run `fn` with `given`, or with the store's blob-info cache, flushed afterwards (a failed flush costs hints, never the push); a memory store's lasts the call. */
export async function withBlobInfoCache<T>(store: Store, given: BlobInfoCache | undefined, fn: (cache: BlobInfoCache) => Promise<T>): Promise<T> {
  if (given) return fn(given);
  // a store without a file system (openMemoryStore) keeps its hints for the call
  if (store.root.startsWith("memory:")) return fn(BlobInfoCache.memory());
  const dir = join(store.root, BLOB_INFO_CACHE_DIR);
  await mkdir(dir, { recursive: true });
  const cache = await BlobInfoCache.open(dir);
  try {
    return await fn(cache);
  } finally {
    await cache.flush().catch(() => undefined);
  }
}
