/**
 * The image explorer's computations, usable from scripts as from `berth
 * serve`'s page and `berth explore`: an image explained layer by layer (which
 * step made each layer, what it added, changed and removed, the wasted space
 * and dive's efficiency score), one layer's files marked against the layers
 * below, the image's files as they stand after a layer, and two images
 * compared.
 * @module
 */
import { chainIds, type Digest, InvalidArgumentError } from "@berth/digest";
import type { ImageConfig, Store } from "@berth/image-store";
import { computeEfficiency, type EfficiencyReport } from "./efficiency.js";
import { ImageServiceErrorCode } from "./errors.js";
import { inspectImage } from "./images.js";
import { type LayerFiles, layerTree } from "./layertree.js";
import { type MarkedEntry, type StackedFile, stackLayers } from "./stack.js";

/** The parts of an image config a person looks at first. */
export interface ConfigSummary {
  entrypoint: string[] | null;
  cmd: string[] | null;
  env: string[];
  labels: Record<string, string>;
  user: string;
  workdir: string;
  exposedPorts: string[];
  volumes: string[];
  stopSignal: string;
  /** `os/architecture[/variant]`. */
  platform: string;
}

/** One step of the image's history (the config's `history`), bottom first. */
export interface ExplainedStep {
  created: string | undefined;
  createdBy: string;
  comment: string;
  /** The step made no layer (`empty_layer`). */
  emptyLayer: boolean;
  /** Index of the layer this step made, or null. */
  layer: number | null;
}

/** Counts of a layer's entries by status (directories that only repeat the one below are not counted). */
export interface ChangeCounts {
  added: number;
  changed: number;
  removed: number;
  /** File bytes this layer adds or rewrites. */
  addedBytes: number;
  /** Bytes of the layers below that this layer's removals hide. */
  removedBytes: number;
}

/** One layer of an image, explained. */
export interface ExplainedLayer {
  index: number;
  diffID: Digest;
  chainID: Digest;
  /** Digest and media type of the blob as stored (compressed or not). */
  blob: { digest: Digest; mediaType: string; size: number } | null;
  /** File bytes of the layer (dockerd's layer size). */
  size: number;
  /** Entries in the tar (whiteouts included). */
  entries: number;
  /** The history step that made this layer (empty when the history does not say). */
  createdBy: string;
  created: string | undefined;
  comment: string;
  changes: ChangeCounts;
}

/** Everything the explorer shows about one image. */
export interface ImageExplanation {
  id: Digest;
  repoTags: string[];
  repoDigests: string[];
  /** Digest of the manifest berth keeps for the image (for a remote image: the registry's manifest for the platform). */
  manifestDigest: Digest;
  manifestMediaType: string;
  /**
   * Digest of the index the manifest was chosen from: for a remote image
   * whose reference names an index, that index; null for a single-platform
   * remote image and for every local image — the image store keeps one
   * manifest per image and records no index (an image pulled through an
   * index has the index digest in its `repoDigests`, as docker records it).
   */
  indexDigest: Digest | null;
  /** Where a remote image was read (absent for the store's images). */
  remote?: RemoteOrigin;
  created: string | undefined;
  config: ConfigSummary;
  /** Layers bottom first. */
  layers: ExplainedLayer[];
  history: ExplainedStep[];
  /** File bytes of the final image (what a container sees). */
  visibleBytes: number;
  efficiency: EfficiencyReport;
}

/**
 * An image as the explorer reads it, wherever it is: the store
 * ({@link localExplorerImage}) or a registry (`remoteExplorerImage`). Layer
 * trees are read when asked, so a view of layer 2 reads layers 0–2 only.
 */
export interface ExplorerImage {
  id: Digest;
  config: ImageConfig;
  repoTags: string[];
  repoDigests: string[];
  manifestDigest: Digest;
  manifestMediaType: string;
  /** The index the manifest was chosen from, when known (see {@link ImageExplanation.indexDigest}). */
  indexDigest: Digest | null;
  /** Where the image was read from, for a remote one. */
  remote?: RemoteOrigin;
  /** The layer blobs (as stored or served), bottom first; null where unknown. */
  blobs: Array<{ digest: Digest; mediaType: string; size: number } | null>;
  /** Layer `i`'s file list (bottom = 0). */
  tree(i: number): Promise<LayerFiles>;
}

/** Where a remote image was read. */
export interface RemoteOrigin {
  /** The normalised reference (`127.0.0.1:5000/team/app:1`). */
  reference: string;
  /** For a reference to an index: the platform whose manifest was chosen. */
  platform?: string;
}

/** An image resolved with its layers' files read. */
interface Loaded {
  image: ExplorerImage;
  diffIDs: Digest[];
  chainIDs: Digest[];
  trees: LayerFiles[];
}

/** The store's image `name` resolves to, for the explorer. @throws NotFoundError `ERR_IMAGE_NOT_FOUND` */
export async function localExplorerImage(store: Store, name: string): Promise<ExplorerImage> {
  const details = await inspectImage(store, name);
  const chain = chainIds(details.config.rootfs.diff_ids);
  const m = await store.images.manifest(details.id);
  const blobs = await Promise.all(
    chain.map(async (c) => {
      const rec = await store.layers.get(c).catch(() => undefined);
      return rec ? { digest: rec.blob.digest, mediaType: rec.blob.mediaType, size: rec.blob.size } : null;
    }),
  );
  return {
    id: details.id,
    config: details.config,
    repoTags: details.repoTags,
    repoDigests: details.repoDigests,
    manifestDigest: m.digest,
    manifestMediaType: m.manifest.mediaType ?? "application/vnd.oci.image.manifest.v1+json",
    // the image store keeps one manifest per image and no index (see the README)
    indexDigest: null,
    blobs,
    tree: (i) => layerTree(store, chain[i]!),
  };
}

async function load(image: ExplorerImage, upTo?: number): Promise<Loaded> {
  const diffIDs = image.config.rootfs.diff_ids;
  const chain = chainIds(diffIDs);
  const trees: LayerFiles[] = [];
  for (let i = 0; i <= (upTo ?? diffIDs.length - 1); i++) trees.push(await image.tree(i));
  return { image, diffIDs, chainIDs: chain, trees };
}

function summary(c: ImageConfig): ConfigSummary {
  const r = c.config ?? {};
  return {
    entrypoint: (r.Entrypoint as string[] | null | undefined) ?? null,
    cmd: (r.Cmd as string[] | null | undefined) ?? null,
    env: (r.Env as string[] | undefined) ?? [],
    labels: (r.Labels as Record<string, string> | null | undefined) ?? {},
    user: (r.User as string | undefined) ?? "",
    workdir: (r.WorkingDir as string | undefined) ?? "",
    exposedPorts: Object.keys((r.ExposedPorts as Record<string, unknown> | undefined) ?? {}).sort(),
    volumes: Object.keys((r.Volumes as Record<string, unknown> | undefined) ?? {}).sort(),
    stopSignal: (r.StopSignal as string | undefined) ?? "",
    platform: [c.os, c.architecture, c.variant].filter(Boolean).join("/"),
  };
}

/** The history mapped onto the layers: steps with `empty_layer` make none, the others make the next layer (not part of the package face). */
export function mapHistory(config: ImageConfig, layers: number): ExplainedStep[] {
  let next = 0;
  return (config.history ?? []).map((h) => {
    const empty = h.empty_layer === true;
    const layer = !empty && next < layers ? next++ : null;
    return { created: h.created, createdBy: h.created_by ?? "", comment: h.comment ?? "", emptyLayer: empty, layer };
  });
}

function counts(entries: readonly MarkedEntry[]): ChangeCounts {
  const c: ChangeCounts = { added: 0, changed: 0, removed: 0, addedBytes: 0, removedBytes: 0 };
  for (const e of entries) {
    if (e.status === "removed") {
      c.removed++;
      c.removedBytes += e.removedBytes ?? 0;
    } else if (e.status === "added" || e.status === "changed") {
      c[e.status]++;
      c.addedBytes += e.size;
    }
  }
  return c;
}

/**
 * Explain the image `name` resolves to: identities, config, each layer with
 * the step that made it and what it changed, the wasted space and dive's
 * efficiency score. Reads each layer's tar once (then from the cache).
 * @throws NotFoundError `ERR_IMAGE_NOT_FOUND`; AmbiguousPrefixError
 */
export async function explainImage(store: Store, name: string): Promise<ImageExplanation> {
  return explainExplorerImage(await localExplorerImage(store, name));
}

/** {@link explainImage} of an image wherever it is (see {@link ExplorerImage}). */
export async function explainExplorerImage(image: ExplorerImage): Promise<ImageExplanation> {
  const l = await load(image);
  const { marked, tree } = stackLayers(l.trees.map((t) => t.entries));
  let visibleBytes = 0;
  for (const f of tree.files()) visibleBytes += f.size;
  const history = mapHistory(image.config, l.trees.length);
  const stepOf = new Map(history.filter((h) => h.layer !== null).map((h) => [h.layer!, h]));
  const layers: ExplainedLayer[] = [];
  for (let i = 0; i < l.trees.length; i++) {
    const step = stepOf.get(i);
    layers.push({
      index: i,
      diffID: l.diffIDs[i]!,
      chainID: l.chainIDs[i]!,
      blob: image.blobs[i] ?? null,
      size: l.trees[i]!.bytes,
      entries: l.trees[i]!.entries.length,
      createdBy: step?.createdBy ?? "",
      created: step?.created,
      comment: step?.comment ?? "",
      changes: counts(marked[i]!),
    });
  }
  return {
    id: image.id,
    repoTags: image.repoTags,
    repoDigests: image.repoDigests,
    manifestDigest: image.manifestDigest,
    manifestMediaType: image.manifestMediaType,
    indexDigest: image.indexDigest,
    ...(image.remote ? { remote: image.remote } : {}),
    created: image.config.created,
    config: summary(image.config),
    layers,
    history,
    visibleBytes,
    efficiency: computeEfficiency(marked, visibleBytes),
  };
}

/** One layer of an image: its entries marked, and the image's files as they stand after it. */
export interface LayerView {
  index: number;
  diffID: Digest;
  chainID: Digest;
  /** The layer's entries marked against the layers below, in tar order. */
  entries: MarkedEntry[];
  /** With `image`: every path of the image after this layer, parents first. */
  image?: StackedFile[];
}

/**
 * Layer `index` (0 = bottom) of the image `name` resolves to: its entries
 * marked added / changed / unchanged / removed against the layers below, and
 * with `image` the whole filesystem as it stands after that layer.
 * @throws InvalidArgumentError `ERR_INVALID_LAYER_INDEX`; NotFoundError `ERR_IMAGE_NOT_FOUND`
 */
export async function layerView(store: Store, name: string, index: number, opts: { image?: boolean } = {}): Promise<LayerView> {
  return explorerLayerView(await localExplorerImage(store, name), index, opts);
}

/** {@link layerView} of an image wherever it is (see {@link ExplorerImage}); reads layers 0…index only. */
export async function explorerLayerView(image: ExplorerImage, index: number, opts: { image?: boolean } = {}): Promise<LayerView> {
  const diffIDs = image.config.rootfs.diff_ids;
  if (!Number.isInteger(index) || index < 0 || index >= diffIDs.length) {
    throw new InvalidArgumentError(`layer index ${String(index)} is not 0…${diffIDs.length - 1}`, { code: ImageServiceErrorCode.INVALID_LAYER_INDEX });
  }
  const l = await load(image, index);
  const { marked, tree } = stackLayers(l.trees.map((t) => t.entries));
  return {
    index,
    diffID: diffIDs[index]!,
    chainID: l.chainIDs[index]!,
    entries: marked[index]!,
    ...(opts.image ? { image: tree.files() } : {}),
  };
}

/** A layer as the comparison lists it. */
export interface ComparedLayer {
  chainID: Digest;
  diffID: Digest;
  size: number;
  createdBy: string;
}

/** A path whose final state differs between two images. */
export interface FileDifference {
  path: string;
  /** `added`: only in B; `removed`: only in A; `changed`: in both, different. */
  status: "added" | "removed" | "changed";
  sizeA: number | null;
  sizeB: number | null;
}

/** Two images side by side. */
export interface ImageComparison {
  a: { id: Digest; repoTags: string[]; size: number };
  b: { id: Digest; repoTags: string[]; size: number };
  /** Layers both images have (same ChainID: the same layer on the same base), bottom first. */
  shared: ComparedLayer[];
  /** Layers only A has. */
  onlyA: ComparedLayer[];
  /** Layers only B has. */
  onlyB: ComparedLayer[];
  /** Config fields (of {@link ConfigSummary}) whose values differ. */
  configDifferences: Array<{ field: keyof ConfigSummary; a: unknown; b: unknown }>;
  /** Paths whose final state differs, largest first (at most `maxFiles`). */
  files: FileDifference[];
  /** How many paths differ in all (`files` may hold fewer). */
  fileDifferences: number;
}

function comparedLayers(l: Loaded, history: ExplainedStep[]): ComparedLayer[] {
  const by = new Map(history.filter((h) => h.layer !== null).map((h) => [h.layer!, h.createdBy]));
  return l.chainIDs.map((chainID, i) => ({ chainID, diffID: l.diffIDs[i]!, size: l.trees[i]!.bytes, createdBy: by.get(i) ?? "" }));
}

/**
 * Compare two images: the layers they share (by ChainID), the ones each has
 * alone, the config fields that differ and the paths of their final
 * filesystems that differ.
 * @throws NotFoundError `ERR_IMAGE_NOT_FOUND`
 */
export async function compareImages(store: Store, nameA: string, nameB: string, opts: { maxFiles?: number } = {}): Promise<ImageComparison> {
  const [a, b] = [await load(await localExplorerImage(store, nameA)), await load(await localExplorerImage(store, nameB))];
  const la = comparedLayers(a, mapHistory(a.image.config, a.trees.length));
  const lb = comparedLayers(b, mapHistory(b.image.config, b.trees.length));
  const inB = new Set(b.chainIDs);
  const inA = new Set(a.chainIDs);
  const filesA = new Map(stackLayers(a.trees.map((t) => t.entries)).tree.files().map((f) => [f.path, f]));
  const filesB = new Map(stackLayers(b.trees.map((t) => t.entries)).tree.files().map((f) => [f.path, f]));
  const diffs: FileDifference[] = [];
  for (const [path, fa] of filesA) {
    const fb = filesB.get(path);
    if (!fb) diffs.push({ path, status: "removed", sizeA: fa.size, sizeB: null });
    else if (fa.type !== "dir" || fb.type !== "dir") {
      const same = a.chainIDs[fa.layer] !== undefined && a.chainIDs[fa.layer] === b.chainIDs[fb.layer];
      if (same) continue; // written by the same shared layer
      if (fa.type !== fb.type || fa.size !== fb.size || fa.mtime !== fb.mtime || fa.link !== fb.link || fa.mode !== fb.mode) {
        diffs.push({ path, status: "changed", sizeA: fa.size, sizeB: fb.size });
      }
    }
  }
  for (const [path, fb] of filesB) if (!filesA.has(path)) diffs.push({ path, status: "added", sizeA: null, sizeB: fb.size });
  diffs.sort((x, y) => Math.max(y.sizeA ?? 0, y.sizeB ?? 0) - Math.max(x.sizeA ?? 0, x.sizeB ?? 0) || x.path.localeCompare(y.path));
  const ca = summary(a.image.config);
  const cb = summary(b.image.config);
  const configDifferences = (Object.keys(ca) as Array<keyof ConfigSummary>)
    .filter((k) => JSON.stringify(ca[k]) !== JSON.stringify(cb[k]))
    .map((field) => ({ field, a: ca[field], b: cb[field] }));
  const sum = (l: Loaded) => l.trees.reduce((n, t) => n + t.bytes, 0);
  return {
    a: { id: a.image.id, repoTags: a.image.repoTags, size: sum(a) },
    b: { id: b.image.id, repoTags: b.image.repoTags, size: sum(b) },
    shared: la.filter((l) => inB.has(l.chainID)),
    onlyA: la.filter((l) => !inB.has(l.chainID)),
    onlyB: lb.filter((l) => !inA.has(l.chainID)),
    configDifferences,
    files: diffs.slice(0, opts.maxFiles ?? 1000),
    fileDifferences: diffs.length,
  };
}
