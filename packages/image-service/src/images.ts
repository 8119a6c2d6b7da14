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

/**
 * Every usable image with its references, parent and child count, newest
 * first (one pass over the store). Images whose config or layer is gone are
 * left out, as moby leaves them out when it opens its store, and told to
 * `onUnusable`.
 */
export async function collectImages(store: Store, onUnusable?: (id: Digest, reason: Error) => void): Promise<ImageRecord[]> {
  const map = await store.images.map(onUnusable ? { onUnusable } : {});
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
  /** With `sharedSize`: bytes of this image's layers that other images use too (dockerd's `SharedSize`). */
  sharedSize?: number;
}

/** Options of {@link listImages}. */
export interface ListOptions {
  /** Show intermediate images too (untagged, with children): `docker images -a`. */
  all?: boolean;
  /** Keys `dangling`, `reference`, `before`, `since`, `label`, `until`. */
  filters?: Filters;
  /** Compute {@link ImageSummary.sharedSize} among the images listed (one pass over their layer chains). */
  sharedSize?: boolean;
  /** Told of each image left out because its config or layer is gone (`fsck --repair` removes it). */
  onUnusable?(id: Digest, reason: Error): void;
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
  for (const rec of await collectImages(store, opts.onUnusable)) {
    if (!opts.all && rec.refs.length === 0 && rec.children > 0) continue;
    const labels = (rec.image.config.config?.Labels as Record<string, string> | undefined) ?? null;
    if (!matchesImage({ created: rec.created, labels, untagged: rec.refs.length === 0 }, f)) continue;
    const refs = rec.refs.filter((r) => referenceMatches(r, f.reference));
    if (f.reference.length > 0 && refs.length === 0) continue;
    out.push({
      ...rec,
      refs,
      repoTags: refs.filter((r) => !r.includes("@")).map((r) => repoTag(r).familiar),
      repoDigests: refs.filter((r) => r.includes("@")).map((r) => repoTag(r).familiar),
      labels,
    });
  }
  if (opts.sharedSize) {
    // shared among the images listed, as dockerd counts it
    const shared = await sharedSizes(store, out);
    for (const s of out) s.sharedSize = shared.get(s.id) ?? 0;
  }
  return out;
}

/**
 * dockerd's `SharedSize` of each image: the bytes (as dockerd counts them) of
 * the layers in its chain that at least one other image's chain holds too.
 */
export async function sharedSizes(store: Store, records: readonly ImageRecord[]): Promise<Map<Digest, number>> {
  const users = new Map<Digest, number>();
  const chains = new Map<Digest, Digest[]>();
  for (const rec of records) {
    const chain = chainIds(rec.image.config.rootfs.diff_ids);
    chains.set(rec.id, chain);
    for (const c of new Set(chain)) users.set(c, (users.get(c) ?? 0) + 1);
  }
  const sizeOf = new Map<Digest, number>();
  const out = new Map<Digest, number>();
  for (const [id, chain] of chains) {
    let n = 0;
    for (const c of new Set(chain)) {
      if ((users.get(c) ?? 0) < 2) continue;
      if (!sizeOf.has(c)) sizeOf.set(c, await layerSize(store, c));
      n += sizeOf.get(c)!;
    }
    out.set(id, n);
  }
  return out;
}

/** A layer's size as dockerd counts it (the tar's file bytes), 0 when missing. */
export async function layerSize(store: Store, chainID: Digest): Promise<number> {
  const l = await store.layers.get(chainID).catch(() => undefined);
  return l ? (l.contentSize ?? l.size) : 0;
}

/** What an image's manifest holds, as dockerd's `manifests` lists (API 1.47+) describe it. */
export interface ManifestSummary {
  digest: Digest;
  mediaType: string;
  /** Manifest bytes. */
  size: number;
  /** Every blob the manifest references is in the store. */
  available: boolean;
  /** Bytes of the manifest, config and layer blobs in the store. */
  contentSize: number;
  platform: { os: string; architecture: string; variant?: string; "os.version"?: string };
  /** Sum of the layers' sizes as dockerd counts them. */
  unpackedSize: number;
}

/** The manifest berth keeps for an image, summarised. */
export async function manifestSummary(store: Store, image: Image): Promise<ManifestSummary> {
  const m = await store.images.manifest(image.id);
  let contentSize = m.bytes.length;
  let available = true;
  for (const d of [m.manifest.config, ...m.manifest.layers]) {
    const info = await store.content.info(d.digest).catch(() => undefined);
    if (info) contentSize += info.size;
    else available = false;
  }
  const c = image.config;
  return {
    digest: m.digest,
    mediaType: m.manifest.mediaType ?? "application/vnd.oci.image.manifest.v1+json",
    size: m.bytes.length,
    available,
    contentSize,
    platform: { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}), ...(c["os.version"] ? { "os.version": c["os.version"] } : {}) },
    unpackedSize: image.size,
  };
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
  for (const c of chainIds(diffIds)) sizes.push(await layerSize(store, c));
  return sizes;
}
