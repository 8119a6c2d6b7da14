/**
 * Planning a load: from an archive's documents to the images it holds.
 *
 * `manifest.json` (legacy `docker save`, and the legacy half of a Docker 25+
 * hybrid) and `index.json` (OCI layout: nested indexes, image manifests) are
 * read and validated — indexes, manifests and configs with `@berth/oci`'s
 * validators, `manifest.json` with {@link parseDockerManifest} — into an
 * {@link ArchivePlan}: each image's config bytes, layer entries in chain
 * order, tags and parent; the DiffID every layer entry must have; tags given
 * to two images refused. Nothing here touches a store: documents come from an
 * {@link ArchiveDocuments} (the archive's entries), so a plan is a function of
 * the archive alone and is tested without one.
 *
 * Malformed documents are `ERR_INVALID_MANIFEST` (the validator's error as
 * `cause`); missing entries `ERR_NOT_IN_ARCHIVE` (except, with
 * {@link PlanOptions.absentLayers}, a `manifest.json` layer file, which becomes
 * an {@link AbsentLayer} for the store to supply); a descriptor whose size is
 * not its blob's `ERR_SIZE_MISMATCH`; neither document
 * `ERR_UNKNOWN_ARCHIVE_FORMAT`.
 * @module
 */
import { type Digest, hasCode, InvalidArgumentError, isSha256Digest, SizeMismatchError, sha256 } from "@berth/digest";
import {
  configDiffIds,
  type Descriptor,
  formatPlatform,
  hostPlatform,
  MEDIA_TYPE_DOCKER_CONFIG,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  validateImageConfig,
  validateIndex,
  validateManifest,
} from "@berth/oci";
import type { FileEntry } from "./entries.js";
import { ArchiveErrorCode, indexLimit, invalidManifest } from "./errors.js";
import { normalizeTag, parseJson, refNameToTag } from "./util.js";

/** Where a plan reads the archive's documents ({@link ArchiveEntries} is one). */
export interface ArchiveDocuments {
  /** Whether the archive has an entry of this name (`manifest.json`, `index.json`). */
  has(name: string): boolean;
  /** The file at `path`, links followed (`ERR_NOT_IN_ARCHIVE` when absent). */
  file(path: string, referencedBy: string): FileEntry;
  /** The blob of a descriptor's digest (`blobs/sha256/<hex>`). */
  blob(digest: string, referencedBy: string): FileEntry;
  /** A document's bytes (`ERR_JSON_TOO_LARGE` beyond the limit). */
  read(f: FileEntry): Promise<Uint8Array>;
}

/** One image the archive holds. */
export interface PlannedImage {
  /** Image ID: the config's sha256. */
  id: Digest;
  /** The config, verbatim. */
  configBytes: Uint8Array;
  /** The config's rootfs DiffIDs, bottom first. */
  diffIDs: Digest[];
  /** The layer entries, bottom first (one per DiffID); an {@link AbsentLayer} where the archive left a layer out. */
  layers: Array<FileEntry | AbsentLayer>;
  /** Normalized tags (`docker.io/library/busybox:latest`). */
  tags: Set<string>;
  /** Digest of the manifest in the archive (OCI / hybrid archives). */
  archiveManifestDigest?: Digest;
  /** `Parent` of a legacy manifest.json entry. */
  parent?: string;
  /** Where it came from, for messages (`manifest.json[0]`, `manifest sha256:…`). */
  source: string;
  /** `os/arch` of the index descriptor naming it. */
  platform?: string;
}

/**
 * A layer `manifest.json` names but the archive does not hold (with
 * {@link PlanOptions.absentLayers}): as dockerd's loader does, the load takes
 * it from the store when the store has its chain, and fails otherwise.
 */
export interface AbsentLayer {
  kind: "absent";
  /** The path `manifest.json` gives. */
  name: string;
}

/** A layer entry and the DiffID its image's config says it has (checked once the entry is scanned). */
export interface LayerCheck {
  layer: FileEntry;
  diffID: Digest;
  /** `layer <i> (<entry>) of image <id>`, for messages. */
  what: string;
}

/** What an archive holds, as {@link planArchive} read it. */
export interface ArchivePlan {
  format: "docker" | "oci" | "docker+oci";
  /** Images in the order the documents name them (index.json first), each once. */
  images: PlannedImage[];
  /** Each tag and the one image it is for. */
  tags: Map<string, Digest>;
  /** Every layer reference to verify, in document order (an image named twice is checked twice). */
  layerChecks: LayerCheck[];
  /** OCI ref names that could not be turned into a tag. */
  ignoredRefNames: string[];
  /** Manifests that are not images (attestations, artifacts). */
  skippedManifests: Digest[];
}

/** Options of {@link planArchive}. */
export interface PlanOptions {
  /** Repository for bare OCI ref names (`latest`). */
  repository?: string;
  /** Platform (`os/arch`) whose image of a multi-platform index takes the index's tag (default: this machine's). */
  platform?: string;
  /** Stops the walk of an index tree (checked between descriptors). */
  signal?: AbortSignal;
  /**
   * Accept `manifest.json` layer files the archive does not hold, as
   * {@link AbsentLayer}s (dockerd's loader reads no layer whose chain it has,
   * so an archive may leave those out). Default false: `ERR_NOT_IN_ARCHIVE`.
   */
  absentLayers?: boolean;
}

/** One entry of a legacy `manifest.json`. */
export interface DockerManifestItem {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
  Parent?: string;
}

/**
 * Limits of a walk of index.json. Each index and manifest is read once however
 * often it is named, but the tree the indexes stand for is counted as if
 * expanded (an index naming a child 1,000 times counts 1,000 times its size):
 * a few kB of nested indexes must not stand for billions of descriptors that
 * a consumer walking the tree (ours, a daemon, a registry client) would visit.
 */
export const INDEX_WALK_LIMITS = {
  /** Indexes nested in index.json, index.json included. */
  depth: 8,
  /** Descriptors in one index (index.json of a save of many images lists one per image). */
  fanOut: 65_536,
  /** Descriptors in the whole tree, counted as if expanded. */
  descriptors: 200_000,
} as const;

/** How long the walk runs before it lets timers, I/O and signals in (ms). */
const WALK_SLICE_MS = 20;

/** What one index stands for: the images its tags go to, its size as a tree, how many indexes nest under it. */
interface IndexWalk {
  targets: Set<PlannedImage>;
  descriptors: number;
  height: number;
}

/**
 * Read the archive's documents into a plan. Throws on the first document
 * that is malformed, missing or inconsistent; writes nothing.
 */
export async function planArchive(docs: ArchiveDocuments, options: PlanOptions = {}): Promise<ArchivePlan> {
  const hasIndex = docs.has("index.json");
  const hasManifest = docs.has("manifest.json");
  if (!hasIndex && !hasManifest)
    throw new InvalidArgumentError("archive has neither manifest.json nor index.json", { code: ArchiveErrorCode.UNKNOWN_FORMAT });
  const planner = new Planner(docs, options);
  if (hasIndex) await planner.index();
  if (hasManifest) await planner.dockerManifest();
  return {
    format: hasIndex && hasManifest ? "docker+oci" : hasIndex ? "oci" : "docker",
    images: [...planner.planned.values()],
    tags: tagOwners(planner.planned.values()),
    layerChecks: planner.layerChecks,
    ignoredRefNames: planner.ignoredRefNames,
    skippedManifests: planner.skippedManifests,
  };
}

/**
 * Validate a legacy `manifest.json` (parsed JSON): an array of `{Config,
 * RepoTags, Layers, Parent}`.
 * @throws InvalidArgumentError `ERR_INVALID_MANIFEST`
 */
export function parseDockerManifest(doc: unknown, name = "manifest.json"): DockerManifestItem[] {
  if (!Array.isArray(doc)) throw invalidManifest(name, "must be a JSON array");
  const isStrings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string");
  return doc.map((item: unknown, i): DockerManifestItem => {
    const where = `${name}[${i}]`;
    if (typeof item !== "object" || item === null || Array.isArray(item)) throw invalidManifest(where, "must be an object");
    const { Config, RepoTags, Layers, Parent } = item as Record<string, unknown>;
    if (typeof Config !== "string") throw invalidManifest(where, "Config must be a string");
    if (!isStrings(Layers)) throw invalidManifest(where, "Layers must be an array of strings");
    if (RepoTags !== undefined && RepoTags !== null && !isStrings(RepoTags)) throw invalidManifest(where, "RepoTags must be an array of strings");
    if (Parent !== undefined && Parent !== null && typeof Parent !== "string") throw invalidManifest(where, "Parent must be a string");
    return { Config, Layers: Layers as string[], RepoTags: RepoTags as string[] | null | undefined, ...(typeof Parent === "string" && Parent ? { Parent } : {}) };
  });
}

/** Each tag and its image; a tag given to two images is `ERR_INVALID_MANIFEST`. */
function tagOwners(images: Iterable<PlannedImage>): Map<string, Digest> {
  const owner = new Map<string, Digest>();
  for (const p of images)
    for (const t of p.tags) {
      const other = owner.get(t);
      if (other && other !== p.id) throw invalidManifest("archive", `tag ${t} is given to two images (${other} and ${p.id})`);
      owner.set(t, p.id);
    }
  return owner;
}

/** A validator's `ERR_INVALID_*` as this package's `ERR_INVALID_MANIFEST` naming the document. */
function validated<T>(name: string, check: (doc: string) => T): T {
  try {
    return check(name);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    const prefix = `invalid ${name}: `;
    throw invalidManifest(name, err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message, err);
  }
}

/** The planning state: images by ID, checks and reports, filled document by document. */
class Planner {
  readonly planned = new Map<Digest, PlannedImage>();
  readonly layerChecks: LayerCheck[] = [];
  readonly ignoredRefNames: string[] = [];
  readonly skippedManifests: Digest[] = [];
  /** Walks of nested indexes and images of manifests, by digest: each is read once. */
  private readonly indexes = new Map<Digest, IndexWalk>();
  private readonly manifests = new Map<Digest, PlannedImage | undefined>();
  private sliceStart = performance.now();

  constructor(
    private readonly docs: ArchiveDocuments,
    private readonly options: PlanOptions,
  ) {}

  /**
   * OCI: index.json → (nested indexes) → manifests. A top-level descriptor's
   * ref name tags the images under it (see {@link children}).
   */
  async index(): Promise<void> {
    const bytes = await this.docs.read(this.docs.file("index.json", "the archive"));
    const top = validated("index.json", (doc) => validateIndex(parseJson(bytes, doc), doc));
    let total = 0;
    for (const [i, m] of top.manifests.entries()) {
      const t = refNameToTag(m.annotations, this.options.repository);
      if (t.ignored) this.ignoredRefNames.push(t.ignored);
      const doc = `index.json manifests[${i}]`;
      const walk = await this.children([m], { doc, where: () => doc, depth: 1 });
      total += walk.descriptors;
      if (total > INDEX_WALK_LIMITS.descriptors) throw indexLimit("index.json", `the tree of indexes names ${total} descriptors`, INDEX_WALK_LIMITS.descriptors);
      if (t.tag) for (const img of walk.targets) img.tags.add(t.tag);
    }
  }

  /** Legacy / hybrid: manifest.json. */
  async dockerManifest(): Promise<void> {
    const bytes = await this.docs.read(this.docs.file("manifest.json", "the archive"));
    const items = parseDockerManifest(parseJson(bytes, "manifest.json", true));
    for (const [i, item] of items.entries()) {
      const where = `manifest.json[${i}]`;
      const config = this.docs.file(item.Config, `${where} Config`);
      const layers = item.Layers.map((l, j) => this.layerFile(l, `${where} Layers[${j}]`));
      const tags = (item.RepoTags ?? []).map((t) => normalizeTag(t, `${where} RepoTags`));
      await this.image({ config, layers, source: where, tags, ...(item.Parent ? { parent: item.Parent } : {}) });
    }
  }

  /** A `manifest.json` layer path: its entry, or (with `absentLayers`) an {@link AbsentLayer} when the archive has none. */
  private layerFile(path: string, referencedBy: string): FileEntry | AbsentLayer {
    try {
      return this.docs.file(path, referencedBy);
    } catch (err) {
      if (this.options.absentLayers && hasCode(err, ArchiveErrorCode.NOT_IN_ARCHIVE)) return { kind: "absent", name: path };
      throw err;
    }
  }

  /**
   * The descriptors of one index (at `depth`, index.json's being 1):
   * manifests become images, nested indexes are walked, each digest once. A
   * tag above goes to one image directly under each index of the tree: for a
   * multi-platform index, the one of `options.platform`, else the first;
   * those are the walk's `targets`.
   */
  private async children(descs: Descriptor[], at: { doc: string; where: (i: number) => string; depth: number }): Promise<IndexWalk> {
    const limits = INDEX_WALK_LIMITS;
    if (at.depth > limits.depth) throw indexLimit(at.doc, `indexes nested ${at.depth} deep`, limits.depth);
    if (descs.length > limits.fanOut) throw indexLimit(at.doc, `lists ${descs.length} descriptors`, limits.fanOut);
    const walk: IndexWalk = { targets: new Set(), descriptors: descs.length, height: 0 };
    const images: PlannedImage[] = [];
    for (const [i, desc] of descs.entries()) {
      await this.yieldNow();
      const where = at.where(i);
      const f = this.docs.blob(desc.digest, where);
      if (desc.size !== f.size) throw new SizeMismatchError(`${where}: blob ${desc.digest} is ${f.size} bytes, descriptor says ${desc.size}`);
      const mt = desc.mediaType;
      if (mt === MEDIA_TYPE_OCI_INDEX || mt === MEDIA_TYPE_DOCKER_MANIFEST_LIST) {
        const child = await this.nestedIndex(desc.digest, f, at.depth + 1);
        walk.descriptors += child.descriptors;
        walk.height = Math.max(walk.height, child.height + 1);
        for (const img of child.targets) walk.targets.add(img);
        if (walk.descriptors > limits.descriptors) throw indexLimit(at.doc, `the tree of indexes under it names ${walk.descriptors} descriptors`, limits.descriptors);
        continue;
      }
      const img = await this.manifest(desc, f);
      if (img) {
        if (desc.platform) img.platform = `${desc.platform.os}/${desc.platform.architecture}`;
        images.push(img);
      }
    }
    if (images.length > 0) {
      const want = this.options.platform ?? formatPlatform(hostPlatform());
      walk.targets.add(images.find((g) => g.platform === want) ?? images[0]!);
    }
    return walk;
  }

  /** A nested index, walked the first time its digest is met; met again (at `depth`), its walk is reused. */
  private async nestedIndex(digest: Digest, f: FileEntry, depth: number): Promise<IndexWalk> {
    const name = `index ${digest}`;
    let walk = this.indexes.get(digest);
    if (!walk) {
      const bytes = await this.docs.read(f);
      const child = validated(name, (doc) => validateIndex(parseJson(bytes, `blob ${digest}`), doc));
      walk = await this.children(child.manifests, { doc: name, where: (j) => `${name} manifests[${j}]`, depth });
      this.indexes.set(digest, walk);
    }
    if (depth + walk.height > INDEX_WALK_LIMITS.depth) throw indexLimit(name, `indexes nested ${depth + walk.height} deep`, INDEX_WALK_LIMITS.depth);
    return walk;
  }

  /** The image of a manifest descriptor (read once per digest), or nothing when it is not an image. */
  private async manifest(desc: Descriptor, f: FileEntry): Promise<PlannedImage | undefined> {
    if (this.manifests.has(desc.digest)) return this.manifests.get(desc.digest);
    let img: PlannedImage | undefined;
    const mt = desc.mediaType;
    if (mt === MEDIA_TYPE_OCI_MANIFEST || mt === MEDIA_TYPE_DOCKER_MANIFEST) {
      const name = `manifest ${desc.digest}`;
      const bytes = await this.docs.read(f);
      const manifest = validated(name, (doc) => validateManifest(parseJson(bytes, `blob ${desc.digest}`), doc));
      const cfg = manifest.config;
      if (cfg.mediaType === MEDIA_TYPE_OCI_CONFIG || cfg.mediaType === MEDIA_TYPE_DOCKER_CONFIG) {
        const config = this.docs.blob(cfg.digest, `${name} config`);
        if (cfg.size !== config.size) throw new SizeMismatchError(`${name}: config ${cfg.digest} is ${config.size} bytes, descriptor says ${cfg.size}`);
        const layers = manifest.layers.map((l, j) => {
          const le = this.docs.blob(l.digest, `${name} layers[${j}]`);
          if (l.size !== le.size) throw new SizeMismatchError(`${name} layers[${j}]: blob ${l.digest} is ${le.size} bytes, descriptor says ${l.size}`);
          return le;
        });
        img = await this.image({ config, layers, source: name, archiveManifestDigest: desc.digest });
      }
    }
    if (!img) this.skippedManifests.push(desc.digest);
    this.manifests.set(desc.digest, img);
    return img;
  }

  /**
   * Let timers, I/O and signal handlers run when the walk has held the
   * thread for a while, then stop if `options.signal` fired.
   */
  private async yieldNow(): Promise<void> {
    if (performance.now() - this.sliceStart < WALK_SLICE_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.sliceStart = performance.now();
    this.options.signal?.throwIfAborted();
  }

  /** The image of a config and its layer entries; an image named again gains tags, a manifest digest, a parent. */
  private async image(named: {
    config: FileEntry;
    layers: Array<FileEntry | AbsentLayer>;
    source: string;
    tags?: string[];
    archiveManifestDigest?: Digest;
    parent?: string;
  }): Promise<PlannedImage> {
    const { config: configEntry, layers, source, ...extra } = named;
    const configBytes = await this.docs.read(configEntry);
    const id = sha256(configBytes);
    const name = `config ${configEntry.name}`;
    const config = validated(name, (doc) => validateImageConfig(parseJson(configBytes, doc), doc));
    const diffIDs = configDiffIds(config);
    if (!diffIDs.every((d) => isSha256Digest(d))) throw invalidManifest(name, "rootfs.diff_ids must be an array of sha256 digests");
    if (diffIDs.length !== layers.length) throw invalidManifest(source, `lists ${layers.length} layers but config ${id} has ${diffIDs.length} DiffIDs`);
    for (const [i, layer] of layers.entries())
      if (layer.kind === "file") this.layerChecks.push({ layer, diffID: diffIDs[i]!, what: `layer ${i} (${layer.name}) of image ${id}` });
    const prev = this.planned.get(id);
    if (prev) {
      for (const t of extra.tags ?? []) prev.tags.add(t);
      prev.archiveManifestDigest ??= extra.archiveManifestDigest;
      prev.parent ??= extra.parent;
      return prev;
    }
    const p: PlannedImage = {
      id,
      configBytes,
      diffIDs,
      layers,
      tags: new Set(extra.tags ?? []),
      source,
      ...(extra.archiveManifestDigest ? { archiveManifestDigest: extra.archiveManifestDigest } : {}),
      ...(extra.parent ? { parent: extra.parent } : {}),
    };
    this.planned.set(id, p);
    return p;
  }
}
