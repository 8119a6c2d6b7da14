/**
 * The classic builder's cache (moby `image/cache`): the local parent-chain
 * cache and the `--cache-from` history cache, over a berth image store.
 * @module
 */
import { BerthError, type Digest, NotFoundError } from "@berth/digest";
import { type ContainerConfig, type History, type ImageConfig, ImageStoreErrorCode } from "@berth/image-store";
import { comparePlatform, defaultBuildPlatform } from "@berth/oci";
import { type BuildPlatform, compareContainerConfig, containerConfigDifference, entrypointMergedFromParent } from "./compare.js";
import { goHistory, goRestoredImageConfig } from "./gojson.js";
import { CacheErrorCode } from "./errors.js";

/** The part of an image the cache reads. */
export interface CacheImage {
  id: Digest;
  config: ImageConfig;
}

/** The image-store roles the classic cache uses (a berth `Store` has them all). */
export interface ClassicCacheStore {
  images: {
    get(id: Digest | string): Promise<CacheImage>;
    children(id: Digest | string): Promise<Digest[]>;
    isBuiltLocally(id: Digest | string): Promise<boolean>;
    map(): Promise<Map<Digest, CacheImage>>;
    /**
     * Optional (a berth image store has it): the images without a parent,
     * from metadata. With it a `FROM scratch` lookup reads only those configs;
     * without it, it reads every image (`map`) to find them.
     */
    parentless?(): Promise<Digest[]>;
    getParent(id: Digest | string): Promise<Digest | undefined>;
    setParent(id: Digest | string, parent: Digest | string): Promise<void>;
    create(configBytes: Uint8Array): Promise<CacheImage>;
  };
  references?: {
    resolve(nameOrId: string): Promise<Digest>;
  };
}

/** A warning the cache reports instead of failing (as moby logs them). */
export interface CacheWarning {
  /** Stable code: `ERR_CACHE_FROM_NOT_FOUND` (a `--cache-from` source was skipped), `ERR_BUILT_LOCALLY_UNKNOWN`. */
  code: string;
  message: string;
  /** The `--cache-from` reference or image ID concerned. */
  subject: string;
  cause?: unknown;
}

/** Options of {@link createCache}. */
export interface CreateCacheOptions {
  /** `--cache-from` sources: references, full IDs or unique ID prefixes. */
  cacheFrom?: readonly string[];
  /** Fix docker/cli#3477 (`ENTRYPOINT []` never hits). Default false: behave as moby. */
  fixEmptyEntrypoint?: boolean;
  /**
   * `docker_version` written into images restored from a `--cache-from`
   * source. moby 20.10 writes its own version (so the restored IDs depend on
   * it), newer moby writes none. Default: none.
   */
  dockerVersion?: string;
  /** Platform used when `getCache` is called without one. Default linux/<host arch>. */
  defaultPlatform?: BuildPlatform;
  /** Called for each warning (they are also collected in `warnings`). */
  onWarning?(warning: CacheWarning): void;
}

/**
 * Why one image was or was not the cache hit for a step (explain mode), by
 * the rule of moby's cache that decided:
 *
 * - `hit` — the answer; `restored` — a `--cache-from` step restored from a source
 * - `not-built-locally` — a child of the parent, but pulled or loaded, not built here
 * - `built-locally-unknown` — whether it was built here could not be read
 * - `no-platform` — an old image without os/architecture (moby skips those)
 * - `platform` — built for another platform (`detail`: its os/architecture[/variant])
 * - `config` — its `container_config` differs from the step's (`detail`: the first field that differs)
 * - `no-created` — same step, but without a valid `created` time, so never chosen
 * - `older` — same step, but a newer match exists
 * - `not-from-source` — a local match that is not an ancestor of any `--cache-from` source
 * - `history` — a `--cache-from` source whose history does not continue the parent's
 * - `history-entry` — a source whose next history entry is another step (`detail`: its `created_by`)
 */
export interface CacheCandidate {
  image: Digest;
  verdict:
    | "hit"
    | "restored"
    | "not-built-locally"
    | "built-locally-unknown"
    | "no-platform"
    | "platform"
    | "config"
    | "no-created"
    | "older"
    | "not-from-source"
    | "history"
    | "history-entry";
  detail?: string;
}

/** Options of {@link BuildCache.getCache}. */
export interface GetCacheOptions {
  /**
   * Explain mode: told of every image the lookup considered and the rule that
   * decided it (moby PR#26839's per-step explanation). No call at all means no
   * image was built on this parent (or the step has no config).
   */
  explain?(candidate: CacheCandidate): void;
}

/** The answer to "has this step been built before?". */
export interface BuildCache {
  /** `"local"` (parent chain only) or `"cache-from"` (history-based, with local first). */
  readonly kind: "local" | "cache-from";
  /** Warnings so far (skipped sources). */
  readonly warnings: readonly CacheWarning[];
  /** IDs of the `--cache-from` images in use (narrowed to one after a restore). */
  sources(): Digest[];
  /**
   * The ID of a cached image for the step that would run `containerConfig` on
   * top of `parentId` (`""` = `FROM scratch`), or `undefined` on a miss.
   * @throws NotFoundError `ERR_CACHE_PARENT_NOT_FOUND` when `parentId` is not in the store
   */
  getCache(
    parentId: string,
    containerConfig: ContainerConfig | null | undefined,
    platform?: BuildPlatform,
    options?: GetCacheOptions,
  ): Promise<Digest | undefined>;
}

function imagePlatform(c: ImageConfig): BuildPlatform {
  return {
    os: c.os ?? "",
    architecture: c.architecture ?? "",
    variant: c.variant ?? "",
    osVersion: c["os.version"] ?? "",
    osFeatures: c["os.features"] ?? [],
  };
}

function parentNotFound(id: string, cause: unknown): NotFoundError {
  return new NotFoundError(`cache: parent image ${id} not found`, { code: CacheErrorCode.CACHE_PARENT_NOT_FOUND, cause, details: { image: id } });
}

async function getParentImage(store: ClassicCacheStore, parentId: string): Promise<CacheImage | undefined> {
  if (parentId === "") return undefined;
  try {
    return await store.images.get(parentId);
  } catch (err) {
    if (err instanceof NotFoundError) throw parentNotFound(parentId, err);
    throw err;
  }
}

/**
 * moby's `LocalImageCache`: among the children of the parent (for `""`, the
 * images without a parent), the images built locally, with a platform (an
 * empty one is an old linux/amd64 image and is skipped) the builder's platform
 * accepts, whose `container_config` equals the probe by moby's `compare`; the
 * newest `created` wins (an image without `created` never does).
 */
export class LocalImageCache implements BuildCache {
  readonly kind = "local" as const;
  readonly warnings: CacheWarning[] = [];

  constructor(
    private readonly store: ClassicCacheStore,
    private readonly options: Pick<CreateCacheOptions, "fixEmptyEntrypoint" | "defaultPlatform" | "onWarning"> = {},
  ) {}

  sources(): Digest[] {
    return [];
  }

  private warn(w: CacheWarning): void {
    this.warnings.push(w);
    this.options.onWarning?.(w);
  }

  private async siblings(parentId: string): Promise<Digest[]> {
    if (parentId !== "") return this.store.images.children(parentId);
    if (this.store.images.parentless) return this.store.images.parentless();
    const out: Digest[] = [];
    for (const id of (await this.store.images.map()).keys()) {
      if ((await this.store.images.getParent(id)) !== undefined) continue;
      out.push(id);
    }
    return out;
  }

  async getCache(
    parentId: string,
    containerConfig: ContainerConfig | null | undefined,
    platform?: BuildPlatform,
    options: GetCacheOptions = {},
  ): Promise<Digest | undefined> {
    const parent = await getParentImage(this.store, parentId);
    if (containerConfig === null || containerConfig === undefined) return undefined;
    const explain = options.explain;
    const want = platform ?? this.options.defaultPlatform ?? defaultBuildPlatform();
    let match: { id: Digest; created: bigint } | undefined;
    const same: Digest[] = []; // matches in the order seen, for `older`
    for (const id of await this.siblings(parentId)) {
      let img: CacheImage;
      try {
        img = await this.store.images.get(id);
      } catch (err) {
        throw new NotFoundError(`cache: unable to find image ${id}`, { code: CacheErrorCode.IMAGE_NOT_FOUND, cause: err, details: { image: id } });
      }
      let local: boolean;
      try {
        local = await this.store.images.isBuiltLocally(id);
      } catch (err) {
        this.warn({ code: CacheErrorCode.BUILT_LOCALLY_UNKNOWN, message: `failed to check if image ${id} was built locally`, subject: id, cause: err });
        explain?.({ image: id, verdict: "built-locally-unknown" });
        continue;
      }
      if (!local) {
        explain?.({ image: id, verdict: "not-built-locally" });
        continue;
      }
      const p = imagePlatform(img.config);
      if (p.os === "" && p.architecture === "") {
        explain?.({ image: id, verdict: "no-platform" }); // old linux/amd64 image without a platform
        continue;
      }
      if (!comparePlatform(want, p)) {
        explain?.({ image: id, verdict: "platform", detail: [p.os, p.architecture, p.variant].filter(Boolean).join("/") });
        continue;
      }
      const stored = img.config.container_config;
      let difference = containerConfigDifference(stored, containerConfig);
      if (difference !== undefined && this.options.fixEmptyEntrypoint && stored) {
        const merged =
          entrypointMergedFromParent(containerConfig, stored, img.config.config, parent?.config.config) &&
          compareContainerConfig({ ...stored, Entrypoint: containerConfig.Entrypoint ?? null }, containerConfig);
        if (merged) difference = undefined;
      }
      if (difference !== undefined) {
        explain?.({ image: id, verdict: "config", detail: difference });
        continue;
      }
      if (img.config.created === undefined || Number.isNaN(Date.parse(img.config.created))) {
        explain?.({ image: id, verdict: "no-created" });
        continue;
      }
      same.push(id);
      const created = createdNanos(img.config.created);
      if (match === undefined || match.created < created) match = { id, created };
    }
    if (explain) for (const id of same) explain({ image: id, verdict: id === match?.id ? "hit" : "older" });
    return match?.id;
  }
}

/** Nanoseconds since the epoch of an RFC 3339 time (Go's time.Time resolution). */
function createdNanos(t: string): bigint {
  const ms = Date.parse(t);
  const frac = /\.(\d+)/.exec(t)?.[1] ?? "";
  const subMs = Number.parseInt(frac.slice(3, 9).padEnd(6, "0"), 10) || 0;
  return BigInt(ms) * 1_000_000n + BigInt(subMs);
}

function historyEqual(a: History, b: History): boolean {
  return goHistory(a) === goHistory(b);
}

/** moby's `isValidParent`: `parent`'s history and layers are a strict prefix of `img`'s. */
export function isValidParent(img: ImageConfig, parent: ImageConfig | undefined): boolean {
  const ih = img.history ?? [];
  if (ih.length === 0) return false;
  if (parent === undefined) return true;
  const ph = parent.history ?? [];
  const pd = parent.rootfs?.diff_ids ?? [];
  const id = img.rootfs?.diff_ids ?? [];
  if (ph.length === 0 && pd.length === 0) return true;
  if (ph.length >= ih.length) return false;
  if (pd.length > id.length) return false;
  for (let i = 0; i < ph.length; i++) if (!historyEqual(ph[i] as History, ih[i] as History)) return false;
  for (let i = 0; i < pd.length; i++) if (pd[i] !== id[i]) return false;
  return true;
}

/** moby's `isValidConfig`: the probe's Cmd joined with spaces is the history entry's `created_by`. */
export function isValidConfig(cfg: ContainerConfig, h: History): boolean {
  return (cfg.Cmd ?? []).join(" ") === (h.created_by ?? "");
}

/**
 * moby's `getLayerForHistoryIndex`: the DiffID of the layer history entry
 * `index` made, or `undefined` for an empty-layer entry.
 * @throws BerthError `ERR_CACHE_HISTORY_MISMATCH` when the image has fewer layers than its history says (moby would panic)
 */
export function getLayerForHistoryIndex(img: ImageConfig, index: number): Digest | undefined {
  let layerIndex = 0;
  const history = img.history ?? [];
  for (let i = 0; i < history.length; i++) {
    const h = history[i] as History;
    if (i === index) {
      if (h.empty_layer) return undefined;
      break;
    }
    if (!h.empty_layer) layerIndex++;
  }
  const d = img.rootfs?.diff_ids?.[layerIndex];
  if (d === undefined) {
    throw new BerthError(CacheErrorCode.CACHE_HISTORY_MISMATCH, `cache: image history entry ${index} has no layer ${layerIndex} in rootfs`, {
      details: { index, layerIndex },
    });
  }
  return d;
}

/**
 * moby's `ImageCache` for `--cache-from`: the local cache first (a hit counts
 * only when it is an ancestor of one of the sources); else the first source
 * whose history continues the parent's (`isValidParent`) with the probe's Cmd
 * as the next `created_by`. On its last step the source itself is the hit (and
 * gets the parent set); before that an image is restored (the parent's
 * history + the source's entry, the parent's layers + the entry's layer),
 * parented, and the sources narrow to that one.
 */
export class ImageCache implements BuildCache {
  readonly kind = "cache-from" as const;
  readonly warnings: CacheWarning[];
  private readonly local: LocalImageCache;
  private src: CacheImage[];

  constructor(
    private readonly store: ClassicCacheStore,
    sources: CacheImage[],
    private readonly options: CreateCacheOptions = {},
    warnings: CacheWarning[] = [],
  ) {
    this.src = [...sources];
    this.warnings = warnings;
    this.local = new LocalImageCache(store, {
      ...options,
      onWarning: (w) => {
        this.warnings.push(w);
        options.onWarning?.(w);
      },
    });
  }

  sources(): Digest[] {
    return this.src.map((s) => s.id);
  }

  private async isParent(imgId: Digest, parentId: Digest): Promise<boolean> {
    const seen = new Set<string>();
    let cur: Digest | undefined = imgId;
    while (cur !== undefined && !seen.has(cur)) {
      seen.add(cur);
      let next: Digest | undefined;
      try {
        next = await this.store.images.getParent(cur);
      } catch {
        return false;
      }
      if (next === undefined) return false;
      if (next === parentId) return true;
      cur = next;
    }
    return false;
  }

  async getCache(
    parentId: string,
    containerConfig: ContainerConfig | null | undefined,
    platform?: BuildPlatform,
    options: GetCacheOptions = {},
  ): Promise<Digest | undefined> {
    const explain = options.explain;
    // the local lookup's verdicts wait: its hit counts only when a source descends from it
    const local: CacheCandidate[] = [];
    const hit = await this.local.getCache(parentId, containerConfig, platform, explain ? { explain: (c) => local.push(c) } : {});
    if (hit !== undefined) {
      for (const s of this.src) {
        if (await this.isParent(s.id, hit)) {
          for (const c of local) explain?.(c);
          return hit;
        }
      }
    }
    for (const c of local) explain?.(c.verdict === "hit" ? { ...c, verdict: "not-from-source" } : c);
    const parent = await getParentImage(this.store, parentId);
    if (containerConfig === null || containerConfig === undefined) return undefined;
    const lenHistory = parent?.config.history?.length ?? 0;
    for (const target of this.src) {
      const th = target.config.history ?? [];
      if (!isValidParent(target.config, parent?.config)) {
        explain?.({ image: target.id, verdict: "history" });
        continue;
      }
      const entry = th[lenHistory];
      if (entry === undefined || !isValidConfig(containerConfig, entry)) {
        explain?.({ image: target.id, verdict: "history-entry", detail: entry?.created_by ?? "(no further history)" });
        continue;
      }
      if (th.length - 1 === lenHistory) {
        if (parent !== undefined) await this.store.images.setParent(target.id, parent.id);
        explain?.({ image: target.id, verdict: "hit" });
        return target.id;
      }
      const id = await this.restore(parent, target, containerConfig);
      this.src = [target]; // never jump to another source once one was followed
      explain?.({ image: target.id, verdict: "restored", detail: id });
      return id;
    }
    return undefined;
  }

  private async restore(parent: CacheImage | undefined, target: CacheImage, cfg: ContainerConfig): Promise<Digest> {
    const lenHistory = parent?.config.history?.length ?? 0;
    const history = [...(parent?.config.history ?? []), target.config.history?.[lenHistory] as History];
    const diffIds: string[] = [...(parent?.config.rootfs?.diff_ids ?? [])];
    const layer = getLayerForHistoryIndex(target.config, lenHistory);
    if (layer !== undefined) diffIds.push(layer);
    const t = target.config;
    const json = goRestoredImageConfig({
      config: cfg,
      architecture: t.architecture,
      os: t.os,
      author: t.author,
      created: history[history.length - 1]?.created,
      dockerVersion: this.options.dockerVersion,
      diffIds,
      history,
      osVersion: t["os.version"],
      osFeatures: t["os.features"],
    });
    const img = await this.store.images.create(new TextEncoder().encode(json));
    if (parent !== undefined) await this.store.images.setParent(img.id, parent.id);
    return img.id;
  }
}

/**
 * moby's `cache.New` / `MakeImageCache`: without `cacheFrom` the local
 * parent-chain cache; with it an {@link ImageCache} over the sources that
 * resolve (a source that does not is skipped with a warning
 * `ERR_CACHE_FROM_NOT_FOUND`, as moby logs and skips it).
 */
export async function createCache(store: ClassicCacheStore, options: CreateCacheOptions = {}): Promise<BuildCache> {
  const cacheFrom = options.cacheFrom ?? [];
  if (cacheFrom.length === 0) return new LocalImageCache(store, options);
  const warnings: CacheWarning[] = [];
  const sources: CacheImage[] = [];
  for (const ref of cacheFrom) {
    try {
      const id = store.references ? await store.references.resolve(ref) : ref;
      sources.push(await store.images.get(id));
    } catch (err) {
      if (!(err instanceof BerthError) || err instanceof NotFoundError || err.code === ImageStoreErrorCode.INVALID_REFERENCE || err.code === ImageStoreErrorCode.AMBIGUOUS_PREFIX) {
        const w: CacheWarning = { code: CacheErrorCode.CACHE_FROM_NOT_FOUND, message: `could not look up ${ref} for cache resolution, skipping`, subject: ref, cause: err };
        warnings.push(w);
        options.onWarning?.(w);
        continue;
      }
      throw err;
    }
  }
  return new ImageCache(store, sources, options, warnings);
}
