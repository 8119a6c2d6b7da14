/**
 * The explorer over an image in a registry, without pulling it: the manifest
 * (for an index, the platform's manifest; the index digest is kept), the
 * config, and each layer blob only when its file tree is not known yet —
 * streamed through the header walk (decompressed chunk by chunk, never whole
 * in memory), its blob digest verified by the registry client and its DiffID
 * by the walk, then the tree cached per DiffID under the store root, where
 * local layers' trees live too. A second view of the image, or of another
 * image sharing a layer, fetches no layer blob; nor does a layer the store
 * has itself. Nothing is written to the store but that cache.
 * @module
 */
import { chainIds } from "@berth/digest";
import type { Store } from "@berth/image-store";
import { parseReference } from "@berth/oci";
import type { RegistryClient } from "@berth/registry";
import { type ExplorerImage, explainExplorerImage, explorerLayerView, type ImageExplanation, type LayerView } from "./explore.js";
import { cachedLayerTree, cacheLayerTree, type LayerFiles, layerTree, readLayerBlob } from "./layertree.js";
import { resolveRemoteImage, withClient } from "./registry.js";

/** Options of the remote explorer. */
export interface RemoteExploreOptions {
  /** The client to use (kept open). Default: a new one with Docker's credentials, closed at the end. */
  client?: RegistryClient;
  /** Reach registries without TLS verification, falling back to plain http (loopback registries always are). */
  insecure?: boolean;
  /** `os/arch[/variant]` to choose from an index. Default: this machine's. */
  platform?: string;
  signal?: AbortSignal;
  /** Called for each layer blob fetched (after the tree cache and the store had nothing for it). */
  onFetch?(layer: { index: number; digest: string; size: number }): void;
}

/** Resolve `name` at its registry and run `fn` on it as an {@link ExplorerImage}. */
async function withRemoteImage<T>(store: Store, name: string, opts: RemoteExploreOptions, fn: (image: ExplorerImage) => Promise<T>): Promise<T> {
  const ref = parseReference(name);
  return withClient(opts, async (client) => {
    const repo = client.repository(ref);
    const r = await resolveRemoteImage(store, repo, ref, opts);
    const diffIDs = r.image.rootfs.diff_ids;
    const chain = chainIds(diffIDs);
    const call = opts.signal ? { signal: opts.signal } : {};
    const tree = async (i: number): Promise<LayerFiles> => {
      const diffID = diffIDs[i]!;
      const cached = await cachedLayerTree(store, diffID);
      if (cached) return cached;
      if (await store.layers.has(chain[i]!)) return layerTree(store, chain[i]!);
      const desc = r.parsed.layers[i]!;
      opts.onFetch?.({ index: i, digest: desc.digest, size: desc.size });
      // the whole blob is read: the client checks its digest at the end, the reader the DiffID
      const entries = await readLayerBlob(repo.blobChunks({ digest: desc.digest, size: desc.size }, call), { what: `layer ${diffID} (blob ${desc.digest})`, diffID });
      return cacheLayerTree(store, diffID, entries);
    };
    const tag = ref.digest === undefined ? ref.tag : undefined;
    return fn({
      // the config was verified against its descriptor: its digest is the image ID
      id: r.parsed.config.digest,
      config: r.image,
      repoTags: tag !== undefined ? [`${ref.familiarName}:${tag}`] : [],
      repoDigests: [`${ref.familiarName}@${r.root.digest}`],
      manifestDigest: r.manifest.digest,
      manifestMediaType: r.manifest.mediaType,
      indexDigest: r.root.digest === r.manifest.digest ? null : r.root.digest,
      remote: { reference: ref.string, ...(r.platform ? { platform: r.platform } : {}) },
      blobs: r.parsed.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
      tree,
    });
  });
}

/**
 * {@link explainImage} of an image in a registry (`127.0.0.1:5000/team/app:1`,
 * `app@sha256:…`), fetching only the layer blobs whose trees are not known.
 * @throws the registry's errors (`ERR_MANIFEST_NOT_FOUND`, `ERR_REGISTRY_UNAVAILABLE`, …);
 *   FailedPreconditionError `ERR_UNSUPPORTED_IMAGE`, `ERR_NO_MATCHING_PLATFORM`; `ERR_DIGEST_MISMATCH`
 *   (blob digest or DiffID); InvalidArgumentError `ERR_NOT_A_TAR`
 */
export function explainRemoteImage(store: Store, name: string, opts: RemoteExploreOptions = {}): Promise<ImageExplanation> {
  return withRemoteImage(store, name, opts, explainExplorerImage);
}

/**
 * {@link layerView} of an image in a registry: fetches (when not known) the
 * blobs of layers 0…index only.
 * @throws as {@link explainRemoteImage}; InvalidArgumentError `ERR_INVALID_LAYER_INDEX`
 */
export function remoteLayerView(store: Store, name: string, index: number, opts: RemoteExploreOptions & { image?: boolean } = {}): Promise<LayerView> {
  return withRemoteImage(store, name, opts, (image) => explorerLayerView(image, index, opts.image ? { image: true } : {}));
}
