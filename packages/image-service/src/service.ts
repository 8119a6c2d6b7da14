/**
 * {@link ImageService}: every operation of this package bound to one store —
 * what the CLI and the server hold, as dockerd holds its ImageService.
 * @module
 */
import type { Writable } from "node:stream";
import type { Digest } from "@berth/digest";
import type { PullFromDaemonOptions } from "@berth/docker-archive";
import { type FsckReport, openStore, type Store } from "@berth/image-store";
import { type LoadImagesOptions, type LoadImagesResult, loadImages, type OpenedSave, openSave, type SaveImagesOptions, type SaveImagesResult, saveImages } from "./archive.js";
import { type BuildOptions, type BuiltImage, buildImage, type ImportOptions, importImage, type LayerInput } from "./build.js";
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
import { type PruneOptions, type PruneResult, pruneImages, type RemoveOptions, type RemoveOutcome, removeImages } from "./delete.js";
import { type HistoryEntry, type ImageDetails, type ImageSummary, imageHistory, inspectImage, type ListOptions, listImages } from "./images.js";
import { type DiskUsage, diskUsage, fsck } from "./system.js";

/** The image service over one store. */
export class ImageService {
  constructor(readonly store: Store) {}

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
  async tag(source: string, target: string): Promise<{ ref: string; id: Digest; previous?: Digest }> {
    await this.#collect();
    const id = await this.store.references.resolve(source);
    const r = await this.store.references.tag(target, id, { force: true });
    return { ...r, id };
  }
  /** `docker rmi`: moby's rules, one GC for all names. */
  async remove(names: readonly string[], opts?: RemoveOptions): Promise<RemoveOutcome[]> {
    await this.#collect();
    return removeImages(this.store, names, opts);
  }
  /** `docker image prune`. */
  async prune(opts?: PruneOptions): Promise<PruneResult> {
    await this.#collect();
    return pruneImages(this.store, opts);
  }
  /** `docker load` from a file (worker threads) or a stream. */
  async load(source: string | AsyncIterable<Uint8Array>, opts?: LoadImagesOptions): Promise<LoadImagesResult> {
    await this.#collect();
    return loadImages(this.store, source, opts);
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
  async build(opts: BuildOptions): Promise<BuiltImage> {
    await this.#collect();
    return buildImage(this.store, opts);
  }
  /** `docker import`: one layer from a directory, tar file or tar stream. */
  async import(source: LayerInput, opts?: ImportOptions): Promise<BuiltImage> {
    await this.#collect();
    return importImage(this.store, source, opts);
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
  async pullFromDaemon(names: readonly string[], opts?: PullFromDaemonOptions): Promise<LoadImagesResult> {
    await this.#collect();
    return pullImagesFromDaemon(this.store, names, opts);
  }
  /** Load one image into a Docker daemon under several names (need not be tagged in the store), per-name results. */
  saveToDaemon(image: string, names: readonly string[], opts?: SaveToDaemonOptions): Promise<SaveToDaemonResult> {
    return saveToDaemon(this.store, image, names, opts);
  }
  /** A layer of the store by DiffID, or undefined. */
  findLayer(diffID: Digest | string): ReturnType<typeof findLayerByDiffId> {
    return findLayerByDiffId(this.store, diffID);
  }
  /**
   * What a killed or interrupted operation left (dead leases and what only
   * they protected) goes before the next write; see `Store.collectGarbage`.
   * Best effort: a failure here is not the write's failure (fsck reports
   * what stays).
   */
  async #collect(): Promise<void> {
    await this.store.collectGarbage().catch(() => undefined);
  }
  /** Close the store. */
  close(): Promise<void> {
    return this.store.close();
  }
}

/** Open the store at `root` (created when missing) and an image service over it. */
export async function openImageService(opts: { root: string }): Promise<ImageService> {
  return new ImageService(await openStore({ root: opts.root }));
}
