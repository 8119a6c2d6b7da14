/**
 * Reading the store as `docker images`, `docker image inspect` and `docker
 * history` show it: one pass that joins images with their references, parents
 * and children, and the per-image views built from it.
 * @module
 */
import { chainIds, type Digest } from "@berth/digest";
import { type Image, type ImageConfig, parseReference, type Store } from "@berth/image-store";
import { compileFilters, type Filters, LIST_FILTERS, matchesImage, referenceMatches } from "./filters.js";

/** One image joined with what the store knows about it. */
export interface ImageRecord {
  id: Digest;
  image: Image;
  /** Normalized references (`docker.io/library/x:tag`, `name@digest`), sorted. */
  refs: string[];
  parent: Digest | undefined;
  /** How many images name this one as parent. */
  children: number;
  /** The config's `created`. */
  created: string | undefined;
}

/** Every image with its references, parent and child count, newest first (one pass over the store). */
export async function collectImages(store: Store): Promise<ImageRecord[]> {
  const map = await store.images.map();
  const refsById = new Map<string, string[]>();
  for (const { ref, id } of await store.references.list()) {
    const list = refsById.get(id) ?? [];
    list.push(ref);
    refsById.set(id, list);
  }
  const childCount = new Map<string, number>();
  for (const image of map.values()) if (image.parent) childCount.set(image.parent, (childCount.get(image.parent) ?? 0) + 1);
  const out: ImageRecord[] = [];
  for (const [id, image] of map) {
    out.push({
      id,
      image,
      refs: (refsById.get(id) ?? []).sort(),
      parent: image.parent,
      children: childCount.get(id) ?? 0,
      created: image.config.created,
    });
  }
  out.sort((a, b) => (Date.parse(b.created ?? "") || 0) - (Date.parse(a.created ?? "") || 0) || a.id.localeCompare(b.id));
  return out;
}

/** How `docker images` shows a reference: familiar repository and tag (`<none>` for a digest reference). */
export function repoTag(ref: string): { repo: string; tag: string; familiar: string } {
  const r = parseReference(ref, { defaultTag: false });
  return { repo: r.familiarName, tag: r.tag ?? (r.digest ? "<none>" : "latest"), familiar: r.familiar };
}

/** One row of a listing. */
export interface ImageSummary extends ImageRecord {
  /** Familiar `repo:tag` names (after a `reference` filter: only the matching ones). */
  repoTags: string[];
  /** Familiar `repo@digest` names. */
  repoDigests: string[];
  /** Config labels, or null when the config has none. */
  labels: Record<string, string> | null;
}

/** Options of {@link listImages}. */
export interface ListOptions {
  /** Show intermediate images too (untagged, with children): `docker images -a`. */
  all?: boolean;
  /** Keys `dangling`, `reference`, `before`, `since`, `label`, `until`. */
  filters?: Filters;
}

/**
 * Images as `docker images` lists them, newest first: intermediate images only
 * with `all`; with a `reference` filter only images with a matching reference,
 * showing only those references.
 * @throws InvalidArgumentError `ERR_INVALID_FILTER`
 */
export async function listImages(store: Store, opts: ListOptions = {}): Promise<ImageSummary[]> {
  const f = await compileFilters(store, opts.filters ?? {}, LIST_FILTERS);
  const out: ImageSummary[] = [];
  for (const rec of await collectImages(store)) {
    if (!opts.all && rec.refs.length === 0 && rec.children > 0) continue;
    const labels = (rec.image.config.config?.Labels as Record<string, string> | undefined) ?? null;
    if (!matchesImage({ created: rec.created, labels, untagged: rec.refs.length === 0 }, f)) continue;
    const refs = rec.refs.filter((r) => referenceMatches(r, f.reference));
    if (f.reference.length > 0 && refs.length === 0) continue;
    const digestRefs = refs.filter((r) => r.includes("@"));
    out.push({
      ...rec,
      refs,
      repoTags: refs.filter((r) => !r.includes("@")).map((r) => repoTag(r).familiar),
      repoDigests: digestRefs.map((r) => repoTag(r).familiar),
      labels,
    });
  }
  return out;
}

/** What `docker image inspect` shows of an image, before any wire shaping. */
export interface ImageDetails {
  id: Digest;
  image: Image;
  config: ImageConfig;
  /** Familiar `repo:tag` names. */
  repoTags: string[];
  /** Familiar `repo@digest` names. */
  repoDigests: string[];
  parent: Digest | undefined;
  /** When a tag last moved onto the image, if ever. */
  lastTagTime: Date | undefined;
}

/**
 * Resolve `name` as dockerd does (full ID, reference, `name@digest`, unique ID
 * prefix) and describe the image.
 * @throws NotFoundError `ERR_IMAGE_NOT_FOUND`; AmbiguousPrefixError
 */
export async function inspectImage(store: Store, name: string): Promise<ImageDetails> {
  const id = await store.references.resolve(name);
  const image = await store.images.get(id);
  const refs = await store.references.referencesOf(id);
  return {
    id,
    image,
    config: image.config,
    repoTags: refs.filter((r) => !r.includes("@")).map((r) => repoTag(r).familiar),
    repoDigests: refs.filter((r) => r.includes("@")).map((r) => repoTag(r).familiar),
    parent: image.parent ?? (await store.images.getParent(id)),
    lastTagTime: await store.images.getLastUpdated(id),
  };
}

/** One history step, newest first (dockerd's `HistoryResponseItem`). */
export interface HistoryEntry {
  /** The image of this step when an image of the parent chain has it, else undefined (`<missing>`). */
  id: Digest | undefined;
  created: string | undefined;
  createdBy: string;
  /** Layer bytes as dockerd counts them (0 for empty layers). */
  size: number;
  comment: string;
  emptyLayer: boolean;
  /** Familiar tags of that step's image. */
  tags: string[];
}

/**
 * The history of the image `name` resolves to, newest first. A step's ID is
 * the image of the parent chain whose history ends there (moby's rule).
 */
export async function imageHistory(store: Store, name: string): Promise<HistoryEntry[]> {
  const topId = await store.references.resolve(name);
  const idAtHistoryLen = new Map<number, Digest>();
  for (let id: Digest | undefined = topId; id; id = await store.images.getParent(id)) {
    const len = (await store.images.get(id)).config.history?.length ?? 0;
    if (!idAtHistoryLen.has(len)) idAtHistoryLen.set(len, id);
  }
  const img = await store.images.get(topId);
  const sizes = await layerSizes(store, img.config.rootfs.diff_ids);
  let layer = 0;
  const out: HistoryEntry[] = [];
  const history = img.config.history ?? [];
  for (let i = 0; i < history.length; i++) {
    const h = history[i]!;
    const empty = h.empty_layer === true;
    const id = idAtHistoryLen.get(i + 1);
    const tags = id ? (await store.references.referencesOf(id)).filter((r) => !r.includes("@")).map((r) => repoTag(r).familiar) : [];
    out.push({
      id,
      created: h.created,
      createdBy: h.created_by ?? "",
      size: empty ? 0 : (sizes[layer++] ?? 0),
      comment: h.comment ?? "",
      emptyLayer: empty,
      tags,
    });
  }
  return out.reverse();
}

/** The size of each layer of a rootfs (dockerd's count: the tar's file bytes), 0 where a layer is missing. */
export async function layerSizes(store: Store, diffIds: readonly Digest[]): Promise<number[]> {
  const sizes: number[] = [];
  for (const c of chainIds(diffIds)) {
    const l = await store.layers.get(c).catch(() => undefined);
    sizes.push(l ? (l.contentSize ?? l.size) : 0);
  }
  return sizes;
}
