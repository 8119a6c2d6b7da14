/**
 * Moving images between the store and a Docker daemon (found as the docker
 * CLI finds it: `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, contexts):
 * push streams a load archive with only the layers the daemon lacks (falling
 * back to the full archive when refused, as buildpacks' imgutil does); pull
 * streams `docker save` into the store.
 * @module
 */
import { chainIds, type Digest } from "@berth/digest";
import { DockerClient, type LoadIntoDaemonResult, type LoadResult, loadIntoDaemon, type PullFromDaemonOptions, pullFromDaemon } from "@berth/docker-archive";
import { parseReference, type Store } from "@berth/image-store";

/** Options of {@link pushToDaemon}. */
export interface PushToDaemonOptions {
  /** Send every layer, even those the daemon has. */
  full?: boolean;
  /** The daemon to talk to (default: the docker CLI's — `DOCKER_HOST`, TLS variables, the current context). */
  client?: DockerClient;
}

/** A layer of the pushed images and whether the daemon had it before. */
export interface PushedLayer {
  chainID: Digest;
  diffID: Digest;
  /** Blob bytes. */
  size: number;
  /** The daemon had the layer, so it was left out of the archive (unless the incremental archive was refused). */
  present: boolean;
}

/** What {@link pushToDaemon} did. */
export interface PushToDaemonResult extends LoadIntoDaemonResult {
  /** Every distinct layer of the images, bottom first per image. */
  layers: PushedLayer[];
}

/**
 * Load `names` from the store into the daemon, sending only the layers it
 * lacks (a berth server is asked which it has; see `loadIntoDaemon`).
 */
export async function pushToDaemon(store: Store, names: readonly string[], opts: PushToDaemonOptions = {}): Promise<PushToDaemonResult> {
  // The store first: a missing image is ERR_IMAGE_NOT_FOUND whatever state the daemon is in.
  const layers = new Map<Digest, PushedLayer>();
  for (const name of names) {
    const img = await store.images.get(await store.references.resolve(name));
    const diffs = img.config.rootfs.diff_ids;
    const chains = chainIds(diffs);
    for (let i = 0; i < chains.length; i++) {
      const chainID = chains[i]!;
      if (layers.has(chainID)) continue;
      const l = await store.layers.get(chainID);
      layers.set(chainID, { chainID, diffID: diffs[i]!, size: l.blob.size, present: false });
    }
  }
  const client = opts.client ?? new DockerClient();
  // the daemon tells loadIntoDaemon which chains it has (a berth server when asked, dockerd from its images)
  const r = await loadIntoDaemon(store, names, { incremental: !opts.full, client });
  const list = [...layers.values()].map((l) => ({ ...l, present: !r.fellBack && r.daemonChains.has(l.chainID) }));
  return { ...r, layers: list };
}

/** Copy `names` from the daemon (`docker save`) into the store. */
export function pullImagesFromDaemon(store: Store, names: readonly string[], opts: PullFromDaemonOptions = {}): Promise<LoadResult> {
  return pullFromDaemon(store, [...names], opts);
}

/** Options of {@link saveToDaemon}. */
export interface SaveToDaemonOptions {
  /** The daemon to talk to (default: the docker CLI's — `DOCKER_HOST`, TLS variables, the current context). */
  client?: DockerClient;
  /** Send every layer, even those the daemon has. */
  full?: boolean;
}

/** What happened to one name given to {@link saveToDaemon}. */
export interface DaemonNameOutcome {
  name: string;
  /** Why the daemon does not have the image under this name (the others may still have succeeded). */
  error?: Error;
}

/** What {@link saveToDaemon} did. */
export interface SaveToDaemonResult {
  /** Per name, in the order given. */
  names: DaemonNameOutcome[];
  /** The load into the daemon, when one ran. */
  load?: LoadIntoDaemonResult;
}

/**
 * Load the store's image `image` into a Docker daemon under each of `names`
 * (references that need not exist in the store), sending only the layers the
 * daemon lacks — buildpacks imgutil's `Save(additionalNames…)` for the local
 * daemon. A malformed name fails alone; a refused load fails every name.
 */
export async function saveToDaemon(store: Store, image: string, names: readonly string[], opts: SaveToDaemonOptions = {}): Promise<SaveToDaemonResult> {
  await store.references.resolve(image);
  const outcomes: DaemonNameOutcome[] = names.map((name) => ({ name }));
  const valid: string[] = [];
  for (const o of outcomes) {
    try {
      valid.push(parseReference(o.name).string);
    } catch (err) {
      o.error = err as Error;
    }
  }
  if (valid.length === 0 && names.length > 0) return { names: outcomes };
  try {
    const load = await loadIntoDaemon(store, [image], { incremental: !opts.full, repoTags: { [image]: valid }, client: opts.client ?? new DockerClient() });
    return { names: outcomes, load };
  } catch (err) {
    for (const o of outcomes) o.error ??= err as Error;
    return { names: outcomes };
  }
}

/** Whether a Docker daemon has the image `name` (name, ID or ID prefix). */
export function daemonHasImage(name: string, opts: { client?: DockerClient } = {}): Promise<boolean> {
  return (opts.client ?? new DockerClient()).hasImage(name);
}

/**
 * Remove an image from a Docker daemon (`docker rmi`), with the daemon's own
 * rules; resolves with its report.
 * @throws DaemonError (status 404 when the daemon has no such image, 409 on a conflict)
 */
export function removeFromDaemon(
  name: string,
  opts: { client?: DockerClient; force?: boolean; prune?: boolean } = {},
): Promise<Array<{ Untagged?: string; Deleted?: string }>> {
  return (opts.client ?? new DockerClient()).removeImage(name, { force: opts.force === true, noprune: opts.prune === false });
}

/** A layer of the store whose DiffID is `diffID` (any chain holding it has the same content), or undefined. */
export async function findLayerByDiffId(store: Store, diffID: Digest | string): Promise<Awaited<ReturnType<Store["layers"]["get"]>> | undefined> {
  return (await store.layers.list()).find((l) => l.diffID === diffID);
}
