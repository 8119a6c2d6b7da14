/**
 * Moving images between the store and a Docker daemon (`DOCKER_HOST`):
 * push streams a load archive with only the layers the daemon lacks (falling
 * back to the full archive when refused, as buildpacks' imgutil does); pull
 * streams `docker save` into the store.
 * @module
 */
import { chainIds, type Digest } from "@berth/digest";
import { DockerClient, type LoadIntoDaemonResult, type LoadResult, loadIntoDaemon, type PullFromDaemonOptions, pullFromDaemon } from "@berth/docker-archive";
import type { Store } from "@berth/image-store";

/** Options of {@link pushToDaemon}. */
export interface PushToDaemonOptions {
  /** Send every layer, even those the daemon has. */
  full?: boolean;
  /** The daemon to talk to (default `DOCKER_HOST`, else /var/run/docker.sock). */
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

/** Load `names` from the store into the daemon, sending only the layers it lacks. */
export async function pushToDaemon(store: Store, names: readonly string[], opts: PushToDaemonOptions = {}): Promise<PushToDaemonResult> {
  const client = opts.client ?? new DockerClient();
  const have = opts.full ? new Set<Digest>() : await client.layerChains();
  const layers = new Map<Digest, PushedLayer>();
  for (const name of names) {
    const img = await store.images.get(await store.references.resolve(name));
    const diffs = img.config.rootfs.diff_ids;
    const chains = chainIds(diffs);
    for (let i = 0; i < chains.length; i++) {
      const chainID = chains[i]!;
      if (layers.has(chainID)) continue;
      const l = await store.layers.get(chainID);
      layers.set(chainID, { chainID, diffID: diffs[i]!, size: l.blob.size, present: have.has(chainID) });
    }
  }
  const r = await loadIntoDaemon(store, names, { incremental: !opts.full, client });
  const list = [...layers.values()].map((l) => (r.fellBack ? { ...l, present: false } : l));
  return { ...r, layers: list };
}

/** Copy `names` from the daemon (`docker save`) into the store. */
export function pullImagesFromDaemon(store: Store, names: readonly string[], opts: PullFromDaemonOptions = {}): Promise<LoadResult> {
  return pullFromDaemon(store, [...names], opts);
}
