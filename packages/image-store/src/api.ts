/**
 * The image store's public interfaces (the agreed store contract).
 * @module
 */
import type { Digest } from "@berth/digest";
import type { ContentStore, GarbageSummary, GcOptions, GcResult, LayerStore, Lease } from "@berth/layer-store";
import type { ImageConfig, OciManifest } from "@berth/oci";
import type { PinStore } from "./pins.js";

/** An image: its config (verbatim and parsed) and the identities derived from it. */
export interface Image {
  /** Image ID: sha256 of the config bytes. */
  id: Digest;
  /**
   * The config, parsed and validated (a view: `configBytes` is the truth).
   * `config.history` maps to `config.rootfs.diff_ids` in order, skipping the
   * entries with `empty_layer: true`: the n-th other entry made `diff_ids[n]`
   * (see `History` in `@berth/oci`).
   */
  config: ImageConfig;
  /** The config exactly as given to `create`. */
  configBytes: Uint8Array;
  /** ChainID of the image's rootfs, `null` for an image without layers. */
  chainID: Digest | null;
  /** Digest of the OCI manifest berth wrote for the image (stable for the image's life). */
  manifestDigest: Digest;
  /** Size of that manifest in bytes. */
  manifestSize: number;
  /**
   * Sum of the file sizes in the image's layers, as dockerd counts them (what
   * `docker images` shows): each layer's `Layer.contentSize` (`@berth/layer-store`),
   * not its tar or blob size; a layer recorded before berth kept that figure
   * counts with its uncompressed tar size (`Layer.size`).
   */
  size: number;
  /** Parent image set with `setParent`, if any. */
  parent?: Digest;
}

/** Options of {@link ImageStore.create}. */
export interface CreateImageOptions {
  /**
   * Protect the config and manifest blobs written by `create` from GC until
   * the lease is released (by default `create` takes and releases its own).
   */
  lease?: Lease;
}

/** Result of {@link ImageStore.delete}. */
export interface DeleteResult {
  /** The image IDs deleted (the one asked for). */
  deleted: Digest[];
  /** ChainIDs of the layers whose hold (holder `image:<id>`) was released. */
  releasedLayers: Digest[];
  /** References (normalised) that pointed at the image and were removed. */
  untagged: string[];
  /** When `prune` was asked: what the GC that followed removed. */
  gc?: GcResult;
}

/** Options of {@link ImageStore.delete}. */
export interface DeleteOptions {
  /** Run the store's GC after deleting, so layer bytes nothing else references are freed at once. */
  prune?: boolean;
  /**
   * Delete only when this holds at the moment of the delete, judged under the
   * store's lock with every other process's writes seen: how a prune deletes
   * what it found dangling without taking an image another process has
   * tagged or built on since. When it does not hold, or the image is already
   * gone, nothing changes and `deleted` is empty.
   */
  onlyIf?: (now: { references: string[]; children: Digest[] }) => boolean;
}

/** Docker's image store (moby `image/store.go`) over a berth root. */
export interface ImageStore {
  /**
   * Store a config verbatim as a blob (ID = its sha256), hold its layer chain
   * (holder `image:<id>`), write its OCI manifest once. Creating an existing
   * image returns it unchanged.
   * @throws InvalidArgumentError `ERR_INVALID_JSON` / `ERR_INVALID_CONFIG` (including more non-empty history entries than diff_ids)
   * @throws NotFoundError `ERR_LAYER_NOT_FOUND` when the rootfs ChainID is not in the layer store
   */
  create(configBytes: Uint8Array | string, opts?: CreateImageOptions): Promise<Image>;
  /** @throws NotFoundError `ERR_IMAGE_NOT_FOUND`; InvalidArgumentError `ERR_DIGEST_*` for a malformed ID */
  get(id: Digest | string): Promise<Image>;
  /** True when the image exists (a malformed ID throws, as for `get`). */
  has(id: Digest | string): Promise<boolean>;
  /** Delete an image: untag it, drop its metadata and children's parent links, release its layer. */
  delete(id: Digest | string, opts?: DeleteOptions): Promise<DeleteResult>;
  /**
   * The one image whose ID starts with `prefixOrId` (`sha256:ab12…`, `ab12…`).
   * @throws AmbiguousPrefixError `ERR_AMBIGUOUS_PREFIX`; NotFoundError `ERR_IMAGE_NOT_FOUND`; DigestFormatError for non-hex input
   */
  search(prefixOrId: string): Promise<Digest>;
  /** Set (or with `null` clear) the parent of an image. Both must exist; cycles are refused (`ERR_INVALID_PARENT`). */
  setParent(id: Digest | string, parent: Digest | string | null): Promise<void>;
  /** The parent set with `setParent`, or `undefined`. */
  getParent(id: Digest | string): Promise<Digest | undefined>;
  /** Images whose parent is `id`, sorted. */
  children(id: Digest | string): Promise<Digest[]>;
  /** Images that are no image's parent, sorted. */
  heads(): Promise<Digest[]>;
  /**
   * Images that have no parent (none set with `setParent`, or cleared), sorted:
   * the candidates of a `FROM scratch` build-cache lookup. Answered from the
   * metadata alone: no config is read.
   */
  parentless(): Promise<Digest[]>;
  /**
   * Every usable image (reads every config: use `ids()` when IDs suffice);
   * an image whose config or layer is gone is left out (see {@link MapOptions}).
   */
  map(opts?: MapOptions): Promise<Map<Digest, Image>>;
  /** Every image ID, sorted. */
  ids(): Promise<Digest[]>;
  /** Number of images. */
  len(): Promise<number>;
  /** Record when the image was last updated (default now). */
  setLastUpdated(id: Digest | string, date?: Date): Promise<void>;
  /** When the image was last updated, or `undefined` if never set. */
  getLastUpdated(id: Digest | string): Promise<Date | undefined>;
  /** Mark the image as built on this machine (classic builder cache candidates). */
  setBuiltLocally(id: Digest | string): Promise<void>;
  /** Whether `setBuiltLocally` was called for the image. */
  isBuiltLocally(id: Digest | string): Promise<boolean>;
  /** The image's OCI manifest (verified against its digest). */
  manifest(id: Digest | string): Promise<{ digest: Digest; bytes: Uint8Array; manifest: OciManifest }>;
}

/** Options of {@link ReferenceStore.tag}. */
export interface TagOptions {
  /** Move the tag even if it points at another image. */
  force?: boolean;
}

/** Docker's reference store: tags and digest references to images. */
export interface ReferenceStore {
  /**
   * Point `ref` (normalised: `ubuntu` → `docker.io/library/ubuntu:latest`) at
   * image `id`. `name@digest` refs are stored too (not in `index.json`).
   * @throws AlreadyExistsError `ERR_TAG_CONFLICT` when the tag points at another image and `force` is not set (digest refs never move)
   * @throws InvalidArgumentError `ERR_INVALID_REFERENCE`; NotFoundError `ERR_IMAGE_NOT_FOUND`
   */
  tag(ref: string, id: Digest | string, opts?: TagOptions): Promise<{ ref: string; previous?: Digest }>;
  /**
   * {@link tag} for many references as one write (one journal record, one
   * `index.json`): each step is checked against what the steps before it
   * leave, and a refused step refuses them all, before anything is written.
   * Returns one result per step, in order.
   */
  tagMany(steps: ReadonlyArray<{ ref: string; id: Digest | string; force?: boolean }>): Promise<Array<{ ref: string; previous?: Digest }>>;
  /** Remove a reference; returns the image it pointed at. @throws NotFoundError `ERR_REFERENCE_NOT_FOUND` */
  untag(ref: string): Promise<Digest>;
  /**
   * Docker's lookup order: a full ID, a reference (tag or `name@digest`, where
   * the digest may also be the image's manifest digest), a unique ID prefix.
   * @throws NotFoundError `ERR_IMAGE_NOT_FOUND`; AmbiguousPrefixError; InvalidArgumentError `ERR_INVALID_REFERENCE`
   */
  resolve(nameOrIdOrPrefix: string): Promise<Digest>;
  /**
   * {@link resolve}, resolving to undefined where it would throw
   * `ERR_IMAGE_NOT_FOUND` (no error is built: for callers that ask for names
   * that are often not there, as a registry does). Still throws for an
   * invalid reference or an ambiguous prefix.
   */
  find(nameOrIdOrPrefix: string): Promise<Digest | undefined>;
  /** Normalised references of an image, sorted. */
  referencesOf(id: Digest | string): Promise<string[]>;
  /** Every reference, sorted by reference. */
  list(): Promise<Array<{ ref: string; id: Digest }>>;
}

/** One problem `fsck` found. */
export interface FsckProblem {
  /** Stable kind, e.g. `blob-corrupt`, `image-config-missing`, `reference-dangling`, `index-stale`. */
  kind: string;
  /** File the problem is about. */
  path: string;
  message: string;
  /** The digest, ID or reference concerned. */
  subject?: string;
  /**
   * Garbage (what an interrupted or refused operation left: dead leases,
   * stale ingests, orphan blobs and holds, a torn journal tail, a stale
   * index.json) rather than damage. Garbage goes with the next write or with
   * `repair`; it never makes the report not ok.
   */
  garbage: boolean;
  /** Bytes the garbage takes, when known. */
  bytes?: number;
  /** True when `repair` fixed it. */
  repaired: boolean;
}

/** What `fsck` checked and found. */
export interface FsckReport {
  /** True when no damage is left (after repair, if asked); garbage alone leaves it true. */
  ok: boolean;
  problems: FsckProblem[];
  /** How many problems are garbage, and the bytes they take where known. */
  garbage: GarbageSummary;
  checked: { blobs: number; images: number; references: number; layers: number };
  /** What the repair's GC removed (only with `repair`). */
  gc?: GcResult;
}

/** Options of {@link Store.fsck}. */
export interface FsckOptions {
  /** Fix what can be fixed: drop dangling refs, re-acquire lost holds, release orphan holds, rewrite index.json, compact the journal, remove garbage. */
  repair?: boolean;
}

/** Options of {@link ImageStore.map}. */
export interface MapOptions {
  /**
   * Told of each image left out because it cannot be used: its config blob is
   * gone or damaged (`ERR_BLOB_MISSING` / `ERR_DIGEST_MISMATCH`) or its layer
   * is missing from the layer store (`ERR_LAYER_NOT_FOUND`). moby skips such
   * images when it opens its store; `fsck` reports them and `repair` removes
   * them with their tags.
   */
  onUnusable?(id: Digest, reason: Error): void;
}

/** One store root: images, layers, references and blobs. */
export interface Store {
  /** Absolute path of the root. */
  readonly root: string;
  readonly images: ImageStore;
  /** The layer store; its `gc` keeps what images reference (same as `Store.gc`). */
  readonly layers: LayerStore;
  readonly references: ReferenceStore;
  readonly content: ContentStore;
  /**
   * Named records that keep blobs no image references (GC and fsck roots):
   * the registry's manifests, artifacts and pushed blobs. See `pins.ts`.
   */
  readonly pins: PinStore;
  /** A lease protecting what is created under it from GC. */
  lease(): Promise<Lease>;
  /**
   * A small document blob (a manifest, index or config, at most 16 MiB) read
   * whole and checked against its digest; from a bounded in-memory cache when
   * it was read and verified before (content addressed, so never stale).
   * What the registry face serves over and over.
   * @throws NotFoundError `ERR_BLOB_NOT_FOUND` when the store does not hold it; DataIntegrityError
   *   `ERR_DIGEST_MISMATCH` when the stored bytes hash otherwise (run fsck)
   */
  readDocument(digest: Digest): Promise<Uint8Array>;
  /** Remove layers and blobs no image, tag, lease, pin or other tool's index.json entry references. */
  gc(opts?: GcOptions): Promise<GcResult>;
  /**
   * Remove what interrupted or killed operations left (their dead leases and
   * the blobs and layers only those protected): a {@link gc} when
   * `layers.hasGarbage()` says there is something, else nothing (a few
   * directory listings). Ordinary writes call it, so a crash's garbage goes
   * with the next write. Resolves to the GC's result, or undefined.
   */
  collectGarbage(): Promise<GcResult | undefined>;
  /**
   * Run `fn` with garbage collection held off: under the images lock, which
   * every GC of the store holds from reading its roots to its last removal,
   * in this process and others. A blob `fn` finds present and keeps (a pin
   * record written in `fn`) cannot be collected between the two. Image writes
   * wait for `fn` too: keep it short, and do not call the store's image
   * writes or GC from it (the lock is not re-entrant).
   */
  withoutGc<T>(fn: () => Promise<T>): Promise<T>;
  /** Verify every blob's digest and every reference; with `repair`, fix what can be fixed. */
  fsck(opts?: FsckOptions): Promise<FsckReport>;
  /** Release resources; further calls fail with `ERR_STORE_CLOSED`. */
  close(): Promise<void>;
}
