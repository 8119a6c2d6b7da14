/**
 * {@link ImageService}: every operation of this package bound to one store —
 * what the CLI and the server hold, as dockerd holds its ImageService.
 * @module
 */
import type { Writable } from "node:stream";
import type { Digest } from "@berth/digest";
import type { LayerLookupAnswer, PullFromDaemonOptions } from "@berth/docker-archive";
import { type FsckReport, openStore, type Store } from "@berth/image-store";
import { claimSource } from "@berth/layer-store";
import { type Credential, checkCredential } from "@berth/registry";
import { type LoadImagesOptions, type LoadImagesResult, loadImages, type OpenedSave, openSave, type SaveImagesOptions, type SaveImagesResult, saveImages } from "./archive.js";
import { type BuildOptions, type BuiltImage, buildImage, claimLayerInputs, type ImportOptions, importImage, type LayerInput } from "./build.js";
import {
  findLayerByDiffId,
  type PushToDaemonOptions,
  type PushToDaemonResult,
  pullImagesFromDaemon,
  pushToDaemon,
  type SaveToDaemonOptions,
  type SaveToDaemonResult,
  saveToDaemon,
} from "./daemon.js";
import { type CommitOptions, type CommittedImage, commitDirectory } from "./commit.js";
import { type CopyBetweenOptions, type CopyBetweenResult, type CopyLocation, copyBetween } from "./copy.js";
import { diffImage, diffImages, type ImageDiff, type ImagesDiff } from "./imagediff.js";
import { type PruneOptions, type PruneResult, pruneImages, type RemoveOptions, type RemoveOutcome, removeImages } from "./delete.js";
import { explainRemoteImage, type RemoteExploreOptions, remoteLayerView } from "./explore-remote.js";
import { compareImages, explainImage, type ImageComparison, type ImageExplanation, type LayerView, layerView } from "./explore.js";
import { LayerLookups } from "./incremental.js";
import { type HistoryEntry, type ImageDetails, type ImageSummary, imageHistory, inspectImage, type ListOptions, listImages } from "./images.js";
import { type PushOptions, type PushResult, pushImage } from "./push.js";
import { type PullOptions, type PullResult, pullImage } from "./registry.js";
import { type DiskUsage, diskUsage, fsck } from "./system.js";
import { type UnpackOptions, type UnpackResult, unpackImage } from "./unpack.js";

/** The image service over one store. */
export class ImageService {
  readonly #lookups: LayerLookups;
  constructor(readonly store: Store) {
    this.#lookups = new LayerLookups(store);
  }

  /** Images as `docker images` lists them. */
  list(opts?: ListOptions): Promise<ImageSummary[]> {
    return listImages(this.store, opts);
  }
  /** `docker image inspect` data of the image `name` resolves to. */
  inspect(name: string): Promise<ImageDetails> {
    return inspectImage(this.store, name);
  }
  /** `docker history` rows, newest first. */
  history(name: string): Promise<HistoryEntry[]> {
    return imageHistory(this.store, name);
  }
  /** Point `target` at the image `source` resolves to (moving it if it named another image). */
  tag(source: string, target: string): Promise<{ ref: string; id: Digest; previous?: Digest }> {
    return this.#write(async () => {
      const id = await this.store.references.resolve(source);
      const r = await this.store.references.tag(target, id, { force: true });
      return { ...r, id };
    });
  }
  /** `docker rmi`: moby's rules, one GC for all names. */
  remove(names: readonly string[], opts?: RemoveOptions): Promise<RemoveOutcome[]> {
    return this.#write(() => removeImages(this.store, names, opts));
  }
  /** `docker image prune`. */
  prune(opts?: PruneOptions): Promise<PruneResult> {
    return this.#write(() => pruneImages(this.store, opts));
  }
  /**
   * `docker load` from a file (worker threads) or a stream. A `manifest.json`
   * layer the archive leaves out is taken from the store when it has it (as
   * dockerd does); `lookupLease` names the {@link lookupLayers} answer that
   * protected those layers, released when the load ends.
   * @throws FailedPreconditionError `ERR_UNKNOWN_LOOKUP` (before reading anything)
   */
  load(source: string | AsyncIterable<Uint8Array>, opts: LoadImagesOptions & { lookupLease?: string } = {}): Promise<LoadImagesResult> {
    const { lookupLease, ...options } = opts;
    try {
      if (lookupLease !== undefined) this.#lookups.claim(lookupLease);
    } catch (err) {
      return Promise.reject(err); // the source stays the caller's, untouched
    }
    // a stream is taken over now: the collection and lease before the load must not cost it bytes
    const stream = typeof source === "string" ? undefined : claimSource(source);
    const done = () => {
      stream?.release();
      if (lookupLease !== undefined) void this.#lookups.release(lookupLease).catch(() => undefined);
    };
    return this.#write(() => loadImages(this.store, stream ?? source, options), done);
  }
  /**
   * Which of the layers `chainIDs` names the store has, protected from GC
   * under a lease until a load names it or 10 minutes pass (the negotiated
   * incremental load; `chainIDs` is checked: a stranger's input).
   * @throws InvalidArgumentError `ERR_INVALID_LOOKUP`
   */
  lookupLayers(chainIDs: unknown): Promise<LayerLookupAnswer> {
    return this.#lookups.lookup(chainIDs);
  }
  /** `docker save` to a file (fsync + rename) or a writable stream. */
  save(names: readonly string[], out: string | Writable, opts?: SaveImagesOptions): Promise<SaveImagesResult> {
    return saveImages(this.store, names, out, opts);
  }
  /** `docker save` as a stream whose size is known first. */
  openSave(names: readonly string[], opts?: SaveImagesOptions): Promise<OpenedSave> {
    return openSave(this.store, names, opts);
  }
  /** Make an image from a base, new layers and config changes. */
  build(opts: BuildOptions): Promise<BuiltImage> {
    const claimed = claimLayerInputs(opts.layers);
    return this.#write(() => buildImage(this.store, { ...opts, ...(claimed.layers ? { layers: claimed.layers } : {}) }), claimed.release);
  }
  /** `docker import`: one layer from a directory, tar file or tar stream. */
  import(source: LayerInput, opts?: ImportOptions): Promise<BuiltImage> {
    const claimed = claimLayerInputs([source] as const);
    return this.#write(() => importImage(this.store, claimed.layers[0], opts), claimed.release);
  }
  /** Write an image's root filesystem into an absent or empty directory (`umoci unpack`'s rootfs). */
  unpack(name: string, dir: string, opts?: UnpackOptions): Promise<UnpackResult> {
    return unpackImage(this.store, name, dir, opts);
  }
  /** `docker commit` of a directory: its difference from the base image's filesystem as one new layer on the base. */
  commit(opts: CommitOptions): Promise<CommittedImage> {
    return this.#write(() => commitDirectory(this.store, opts));
  }
  /** `docker diff` of an image: what each layer adds, changes and removes. */
  diff(name: string): Promise<ImageDiff> {
    return diffImage(this.store, name);
  }
  /** The changes that turn image `a`'s filesystem into image `b`'s. */
  diffImages(a: string, b: string): Promise<ImagesDiff> {
    return diffImages(this.store, a, b);
  }
  /** `docker system df`'s numbers. */
  diskUsage(): Promise<DiskUsage> {
    return diskUsage(this.store);
  }
  /** Verify the store; with `repair`, fix what can be fixed. */
  fsck(opts?: { repair?: boolean }): Promise<FsckReport> {
    return fsck(this.store, opts);
  }
  /** Load images into a Docker daemon, sending only the layers it lacks. */
  pushToDaemon(names: readonly string[], opts?: PushToDaemonOptions): Promise<PushToDaemonResult> {
    return pushToDaemon(this.store, names, opts);
  }
  /** Copy images from a Docker daemon into the store. */
  pullFromDaemon(names: readonly string[], opts?: PullFromDaemonOptions): Promise<LoadImagesResult> {
    return this.#write(() => pullImagesFromDaemon(this.store, names, opts));
  }
  /** Load one image into a Docker daemon under several names (need not be tagged in the store), per-name results. */
  saveToDaemon(image: string, names: readonly string[], opts?: SaveToDaemonOptions): Promise<SaveToDaemonResult> {
    return saveToDaemon(this.store, image, names, opts);
  }
  /** `docker pull` from an OCI registry: the platform's image of `name`, tagged, with `name@digest` as a RepoDigest. */
  pull(name: string, opts?: PullOptions): Promise<PullResult> {
    return this.#write(() => pullImage(this.store, name, opts));
  }
  /** `docker push` to an OCI registry (a write too: it records `name@digest`). */
  push(name: string, opts?: PushOptions): Promise<PushResult> {
    return this.#write(() => pushImage(this.store, name, opts));
  }
  /**
   * Copy an image between any two of a registry (`docker://REF`), an OCI
   * layout (`oci:DIR[:REF]`) and this store (`berth:NAME`), as `skopeo copy`
   * does (a write: a copy into the store stores, one out of it reads under
   * the write's lease).
   */
  copy(from: string | CopyLocation, to: string | CopyLocation, opts?: CopyBetweenOptions): Promise<CopyBetweenResult> {
    return this.#write(() => copyBetween(this.store, from, to, opts));
  }
  /**
   * Check a credential against a registry as `docker login` does, storing
   * nothing (a daemon's `POST /auth`).
   * @throws FailedPreconditionError `ERR_REGISTRY_UNAUTHORIZED` when the registry refuses it
   */
  checkRegistryLogin(host: string, credential: Credential, opts: { insecure?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    return checkCredential(host, credential, opts);
  }
  /** A layer of the store by DiffID, or undefined. */
  findLayer(diffID: Digest | string): ReturnType<typeof findLayerByDiffId> {
    return findLayerByDiffId(this.store, diffID);
  }
  /** The explorer's view of an image: layers, what each changed, wasted space, dive's efficiency. */
  explain(name: string): Promise<ImageExplanation> {
    return explainImage(this.store, name);
  }
  /** One layer of an image, its entries marked against the layers below (with `image`: the files after it). */
  layerView(name: string, index: number, opts?: { image?: boolean }): Promise<LayerView> {
    return layerView(this.store, name, index, opts);
  }
  /** Two images side by side: shared and own layers, config and file differences. */
  compare(a: string, b: string, opts?: { maxFiles?: number }): Promise<ImageComparison> {
    return compareImages(this.store, a, b, opts);
  }
  /** {@link explain} of an image in a registry, without pulling it (layer trees cached in the store). */
  explainRemote(name: string, opts?: RemoteExploreOptions): Promise<ImageExplanation> {
    return explainRemoteImage(this.store, name, opts);
  }
  /** {@link layerView} of an image in a registry (fetches layers 0…index when their trees are not known). */
  remoteLayerView(name: string, index: number, opts?: RemoteExploreOptions & { image?: boolean }): Promise<LayerView> {
    return remoteLayerView(this.store, name, index, opts);
  }
  /**
   * Every write: first what a killed or interrupted operation left goes (dead
   * leases and what only they protected; see `Store.collectGarbage`), then
   * the write runs under a lease of its own, so that if it is killed in
   * turn, the next write knows to collect (a delete killed before its GC
   * leaves unprotected blobs that only a dead lease points at). A write that
   * fails removes what only it wrote before it returns: a GC once its lease
   * is gone (a pull or commit cut short by a full disk has stored some blobs
   * and no image). Collection is best effort: its failure is not the write's
   * (fsck reports what stays). Streams the write reads are taken over by the
   * caller before it (`done` releases them).
   */
  async #write<T>(fn: () => Promise<T>, done?: () => void): Promise<T> {
    try {
      await this.store.collectGarbage().catch(() => undefined);
      const marker = await this.store.lease();
      let failed = false;
      try {
        return await fn();
      } catch (err) {
        failed = true;
        throw err;
      } finally {
        await marker.release().catch(() => undefined);
        if (failed) await this.store.gc().catch(() => undefined);
      }
    } finally {
      done?.();
    }
  }
  /** Close the store. */
  async close(): Promise<void> {
    await this.#lookups.close().catch(() => undefined);
    return this.store.close();
  }
}

/** Open the store at `root` (created when missing) and an image service over it. */
export async function openImageService(opts: { root: string }): Promise<ImageService> {
  return new ImageService(await openStore({ root: opts.root }));
}
