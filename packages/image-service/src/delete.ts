/**
 * moby's image delete and prune rules (`daemon/images/image_delete.go`,
 * `image_prune.go`) over a berth store, with one GC per call however many
 * images go: removing by name untags first and deletes only with the last
 * reference; removing by ID refuses several references unless forced (a soft
 * conflict) and children always (a hard one); untagged parents left without
 * children are pruned unless asked not to.
 * @module
 */
import { AlreadyExistsError, type Digest, FailedPreconditionError, hasCode, shortId } from "@berth/digest";
import { parseReference, type Store } from "@berth/image-store";
import type { Layer } from "@berth/layer-store";
import { ImageServiceErrorCode } from "./errors.js";
import { compileFilters, type Filters, matchesImage, PRUNE_FILTERS } from "./filters.js";
import { collectImages, repoTag } from "./images.js";

/** One line of a delete or prune report, in dockerd's order. */
export type DeleteItem = { untagged: string } | { deleted: Digest };

/** Options of {@link removeImages}. */
export interface RemoveOptions {
  /** Remove an image with several references when named by ID (`docker rmi -f`). */
  force?: boolean;
  /** Delete untagged parents left without children (default true; `--no-prune` is false). */
  prune?: boolean;
}

/** What happened to one name given to {@link removeImages}. */
export interface RemoveOutcome {
  name: string;
  /** Lines for this name (untagged references, deleted images and layers). */
  items: DeleteItem[];
  /** Why this name was not removed (the other names still were). */
  error?: Error;
}

/** A deletion in progress: images deleted so far and the layer chains they held. */
class Deletion {
  /** Per deleted image: its report, where its layer lines go, and the ChainIDs its rootfs held, top first. */
  private readonly deleted: Array<{ items: DeleteItem[]; at: number; chain: Digest[] }> = [];
  /** Sizes (dockerd's count) of the layers of deleted images. */
  private readonly sizes = new Map<Digest, number>();
  /** Bytes of the layers {@link finish} removed, as dockerd counts them. */
  layerBytesFreed = 0;

  constructor(private readonly store: Store) {}

  /** Untag every reference of `id`, then delete it (its layers are reported after {@link finish}'s GC). */
  async deleteImage(id: Digest, items: DeleteItem[]): Promise<void> {
    for (const ref of await this.store.references.referencesOf(id)) {
      await this.store.references.untag(ref);
      items.push({ untagged: repoTag(ref).familiar });
    }
    const chain = await this.#chainOf(id);
    await this.store.images.delete(id);
    items.push({ deleted: id });
    this.deleted.push({ items, at: items.length, chain });
  }

  /**
   * Delete `id` if, at the moment of the delete, it still has no children and
   * (unless `tagged` may go too) no references: a prune's choice made again
   * under the store's lock, so an image another process tagged or built on
   * since it was listed stays. False when it stayed (or was already gone).
   */
  async pruneImage(id: Digest, items: DeleteItem[], tagged: boolean): Promise<boolean> {
    const chain = await this.#chainOf(id).catch((err) => {
      if (hasCode(err, "ERR_IMAGE_NOT_FOUND")) return undefined;
      throw err;
    });
    if (!chain) return false;
    const r = await this.store.images.delete(id, { onlyIf: (now) => now.children.length === 0 && (tagged || now.references.length === 0) });
    if (r.deleted.length === 0) return false;
    for (const ref of r.untagged) items.push({ untagged: repoTag(ref).familiar });
    items.push({ deleted: id });
    this.deleted.push({ items, at: items.length, chain });
    return true;
  }

  /** The ChainIDs of `id`'s layers, top first, noting their sizes for the report. */
  async #chainOf(id: Digest): Promise<Digest[]> {
    const img = await this.store.images.get(id);
    const chain: Digest[] = [];
    for (let c: Digest | null | undefined = img.chainID; c; ) {
      chain.push(c);
      const layer: Layer | undefined = await this.store.layers.get(c).catch(() => undefined);
      if (layer) this.sizes.set(c, layer.contentSize ?? layer.size);
      c = layer?.parent;
    }
    return chain;
  }

  /**
   * Delete `id` and then, with `prune`, its parent if that is left untagged
   * and childless (quietly stopping at the first parent that is still needed).
   */
  async deleteWithParents(id: Digest, items: DeleteItem[], prune: boolean): Promise<void> {
    const parent = await this.store.images.getParent(id);
    await this.deleteImage(id, items);
    if (prune && parent) await this.#pruneParent(parent, items);
  }

  /**
   * Delete `id` if it has no references and no children at the moment of the
   * delete (judged under the store's lock: another process may have tagged it
   * or built on it since), then, with `prune`, its untagged childless parents.
   */
  async deleteIfUnreferenced(id: Digest, items: DeleteItem[], prune: boolean): Promise<void> {
    const parent = await this.store.images.getParent(id).catch(() => null);
    if ((await this.pruneImage(id, items, false)) && prune && parent) await this.#pruneParent(parent, items);
  }

  async #pruneParent(parent: Digest, items: DeleteItem[]): Promise<void> {
    const refs = await this.store.references.referencesOf(parent).catch(() => ["?"]);
    const children = await this.store.images.children(parent).catch(() => ["?"]);
    if (refs.length === 0 && children.length === 0) await this.deleteWithParents(parent, items, true);
  }

  /**
   * One GC for everything deleted; each layer it removed is reported after the
   * last deleted image that held it (where moby, releasing per image, reports it).
   */
  async finish(): Promise<void> {
    if (this.deleted.length === 0) return;
    const removed = new Set<string>((await this.store.gc()).removedLayers);
    for (const [c, n] of this.sizes) if (removed.has(c)) this.layerBytesFreed += n;
    const owner = new Map<Digest, number>();
    this.deleted.forEach((d, i) => {
      for (const c of d.chain) if (removed.has(c)) owner.set(c, i);
    });
    // last first, so the positions of earlier insertions into the same report stay right
    for (let i = this.deleted.length - 1; i >= 0; i--) {
      const d = this.deleted[i]!;
      d.items.splice(d.at, 0, ...d.chain.filter((c) => owner.get(c) === i).map((c) => ({ deleted: c })));
    }
  }
}

/**
 * `docker rmi NAME…`: each name by moby's rules, every removal in one GC.
 * A name that fails is reported in its outcome; the others still go.
 */
export async function removeImages(store: Store, names: readonly string[], opts: RemoveOptions = {}): Promise<RemoveOutcome[]> {
  const prune = opts.prune !== false;
  const deletion = new Deletion(store);
  const out: RemoveOutcome[] = [];
  for (const name of names) {
    const items: DeleteItem[] = [];
    const outcome: RemoveOutcome = { name, items };
    out.push(outcome);
    try {
      await removeOne(store, deletion, name, items, opts.force === true, prune);
    } catch (err) {
      outcome.error = err as Error;
    }
  }
  await deletion.finish();
  return out;
}

async function removeOne(store: Store, deletion: Deletion, name: string, items: DeleteItem[], force: boolean, prune: boolean): Promise<void> {
  const id = await store.references.resolve(name);
  const refs = await store.references.referencesOf(id);
  const byRef = namedReference(name, refs);
  if (byRef) {
    await store.references.untag(byRef);
    items.push({ untagged: repoTag(byRef).familiar });
    if (!byRef.includes("@")) await untagDigestsOfRepository(store, id, byRef, items);
    // the image goes with its last reference; one with children is then left untagged (moby's quiet conflict)
    await deletion.deleteIfUnreferenced(id, items, prune);
    return;
  }
  // moby checks the hard conflict (children) before the soft one (several repositories)
  if ((await store.images.children(id)).length > 0) {
    throw new FailedPreconditionError(`conflict: unable to delete ${shortId(id)} (cannot be forced) - image has dependent child images`, {
      code: ImageServiceErrorCode.IMAGE_HAS_CHILDREN,
    });
  }
  if (refs.length > 1 && !force && !singleRepository(refs)) {
    throw new AlreadyExistsError(`conflict: unable to delete ${shortId(id)} (must be forced) - image is referenced in multiple repositories`, {
      code: ImageServiceErrorCode.IMAGE_IN_USE,
    });
  }
  await deletion.deleteWithParents(id, items, prune);
}

/**
 * moby: when the tag removed was its repository's last tag of the image, the
 * image's digest references in that repository (`name@sha256:…`, recorded by
 * a pull) go too, so `rmi name:tag` after a pull deletes the image.
 */
async function untagDigestsOfRepository(store: Store, id: Digest, tag: string, items: DeleteItem[]): Promise<void> {
  const repo = parseReference(tag).name;
  const refs = (await store.references.referencesOf(id)).filter((r) => parseReference(r, { defaultTag: false }).name === repo);
  if (refs.some((r) => !r.includes("@"))) return;
  for (const r of refs) {
    await store.references.untag(r);
    items.push({ untagged: repoTag(r).familiar });
  }
}

/** The reference `name` spells, when it is one of the image's references (not an ID or prefix). */
function namedReference(name: string, refs: readonly string[]): string | undefined {
  try {
    const r = parseReference(name).string;
    return refs.includes(r) ? r : undefined;
  } catch {
    return undefined; // an ID or ID prefix
  }
}

/** moby's `isSingleReference`: at most one tag, and every reference in one repository. */
function singleRepository(refs: readonly string[]): boolean {
  const repos = new Set(refs.map((r) => parseReference(r, { defaultTag: false }).name));
  return refs.filter((r) => !r.includes("@")).length <= 1 && repos.size === 1;
}

/** Options of {@link pruneImages}. */
export interface PruneOptions {
  /** Every image without children, tagged or not (`docker image prune -a`); default only dangling ones. */
  all?: boolean;
  /** Keys `dangling`, `label`, `label!`, `until`. */
  filters?: Filters;
}

/** What a prune removed. */
export interface PruneResult {
  deleted: DeleteItem[];
  /** Bytes of the layers removed, as dockerd counts them (the tars' file bytes; what `docker image prune` reports). */
  spaceReclaimed: number;
  /** Bytes of blobs the store held before and no longer does (compressed layers, configs, manifests). */
  blobBytesFreed: number;
}

/**
 * `docker image prune`: dangling images (or with `all` every image; berth runs
 * no containers) that pass the filters, childless ones first and their
 * parents as they become childless, then one GC.
 * @throws InvalidArgumentError `ERR_INVALID_FILTER`
 */
export async function pruneImages(store: Store, opts: PruneOptions = {}): Promise<PruneResult> {
  const filters = { ...(opts.filters ?? {}) };
  let all = opts.all === true;
  if (filters.dangling) {
    // `dangling=false` is `-a`
    all = filters.dangling.some((v) => /^(false|0)$/i.test(v));
    if (filters.dangling.some((v) => !/^(true|false|1|0)$/i.test(v))) await compileFilters(store, { dangling: filters.dangling }, PRUNE_FILTERS);
    delete filters.dangling;
  }
  const f = await compileFilters(store, filters, PRUNE_FILTERS);
  const before = await blobBytes(store);
  const deletion = new Deletion(store);
  const items: DeleteItem[] = [];
  for (let changed = true; changed; ) {
    changed = false;
    const images = await collectImages(store);
    // Read after the listing: an image some operation is still creating (its config under that
    // operation's live lease, not tagged yet) is left to it; one it finished is tagged by now,
    // which pruneImage sees under the lock.
    const inFlight = (await store.layers.leased()).blobs;
    for (const rec of images) {
      if (rec.children > 0 || inFlight.has(rec.id)) continue;
      if (!all && rec.refs.length > 0) continue;
      const labels = (rec.image.config.config?.Labels as Record<string, string> | undefined) ?? null;
      if (!matchesImage({ created: rec.created, labels, untagged: rec.refs.length === 0 }, f)) continue;
      if (await deletion.pruneImage(rec.id, items, all)) changed = true;
    }
  }
  await deletion.finish();
  return { deleted: items, spaceReclaimed: deletion.layerBytesFreed, blobBytesFreed: Math.max(0, before - (await blobBytes(store))) };
}

/** Bytes of all blobs in the store. */
export async function blobBytes(store: Store): Promise<number> {
  let total = 0;
  for await (const b of store.content.list()) total += b.size;
  return total;
}
