/**
 * The filesystem image store, reference store and `openStore`.
 * @module
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import {
  AlreadyExistsError,
  AmbiguousPrefixError,
  BerthError,
  chainId,
  DataIntegrityError,
  type Digest,
  DigestFormatError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  parseDigest,
  sha256,
} from "@berth/digest";
import {
  type ContentStore,
  fsyncDir,
  type GcOptions,
  type GcResult,
  type FsckOptions as LayerFsckOptions,
  type FsckReport as LayerFsckReport,
  type Layer,
  type LayerStore,
  type Lease,
  createMemoryLayerStore,
  openLayerStore,
  TEMP_SUFFIX,
  withLock,
  writeFileAtomic,
} from "@berth/layer-store";
import type {
  CreateImageOptions,
  DeleteOptions,
  DeleteResult,
  FsckOptions,
  FsckProblem,
  FsckReport,
  Image,
  ImageStore,
  ReferenceStore,
  Store,
  TagOptions,
} from "./api.js";
import { hasIndexEntry, INDEX_FILE, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE, readIndex, renderIndex } from "./layout.js";
import { type ImageRecord, Journal, type MetaProblem, MetaState, type Op } from "./meta.js";
import { parseReference, type Reference } from "@berth/oci";
import {
  type Descriptor,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_MANIFEST,
  nonEmptyLayerCount,
  type OciManifest,
  parseImageConfig,
  parseManifest,
} from "@berth/oci";

/** Largest config or manifest blob read into memory (Docker configs with long histories stay far below). */
export const MAX_DOCUMENT_SIZE = 16 * 1024 * 1024;
/** Name of the cross-process lock that serialises image and reference metadata writes. */
export const IMAGES_LOCK = "images";
/** Prefix of the layer holder names images use: `image:<id>`. */
export const IMAGE_HOLDER_PREFIX = "image:";

/** How many images `createMany` writes at once. */
const CREATE_CONCURRENCY = 8;
const FULL_HEX_RE = /^[a-f0-9]{64}$/;
const HEX_PREFIX_RE = /^(?:sha256:)?[a-f0-9]{1,64}$/;

/** Validate an image ID argument: `sha256:<64 hex>` or 64 hex. Anything else (paths too) is a typed error. */
export function parseImageId(id: string, what = "image ID"): Digest {
  if (typeof id === "string" && FULL_HEX_RE.test(id)) return `sha256:${id}` as Digest;
  let d: Digest;
  try {
    d = parseDigest(id);
  } catch (err) {
    if (err instanceof BerthError) {
      throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(String(id).slice(0, 100))}: ${err.message}`, {
        code: (err as BerthError).code,
        cause: err,
        details: { id },
      });
    }
    throw err;
  }
  if (!d.startsWith("sha256:")) {
    throw new InvalidArgumentError(`invalid ${what} ${d}: image IDs are sha256 digests`, { code: "ERR_DIGEST_UNSUPPORTED" });
  }
  return d;
}

function imageNotFound(id: string): NotFoundError {
  return new NotFoundError(`no such image: ${id}`, { code: "ERR_IMAGE_NOT_FOUND", details: { id } });
}

function closedError(): FailedPreconditionError {
  return new FailedPreconditionError("the store is closed", { code: "ERR_STORE_CLOSED" });
}

function platformString(config: { os?: unknown; architecture?: unknown; variant?: unknown }): string {
  const os = typeof config.os === "string" ? config.os : "";
  const arch = typeof config.architecture === "string" ? config.architecture : "";
  if (!os || !arch) return "";
  return typeof config.variant === "string" && config.variant ? `${os}/${arch}/${config.variant}` : `${os}/${arch}`;
}

function byteView(b: Uint8Array | string): Uint8Array {
  if (typeof b === "string") return new TextEncoder().encode(b);
  if (!(b instanceof Uint8Array)) {
    throw new InvalidArgumentError("image config must be bytes (Uint8Array) or a string", { code: "ERR_INVALID_CONFIG" });
  }
  return b;
}

const sorted = <T extends string>(xs: Iterable<T>): T[] => [...xs].sort();

/** Where image metadata lives: the journal on disk, or memory. @internal */
interface MetaLog {
  readonly state: MetaState;
  readonly problems: MetaProblem[];
  readonly journalPath: string;
  readonly dir: string;
  refresh(): void;
  append(ops: Op[]): Promise<void>;
  compact(): Promise<void>;
  shouldCompact(): boolean;
  close(): void;
}

/** Metadata of an in-memory store. @internal */
class MemoryLog implements MetaLog {
  readonly state = new MetaState();
  readonly problems: MetaProblem[] = [];
  readonly journalPath = "memory:images";
  readonly dir = "memory:images";
  refresh(): void {}
  async append(ops: Op[]): Promise<void> {
    for (const op of ops) this.state.apply(op);
  }
  async compact(): Promise<void> {}
  shouldCompact(): boolean {
    return false;
  }
  close(): void {}
}

/** Shared machinery of one open root. @internal */
class Core {
  closed = false;
  /** In-memory stores: index.json content kept here; lock is an in-process queue. */
  memoryIndex: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  constructor(
    readonly root: string,
    readonly layers: LayerStore,
    readonly journal: MetaLog,
    readonly memory = false,
  ) {}

  get content(): ContentStore {
    return this.layers.content;
  }

  get state() {
    return this.journal.state;
  }

  /** Bring the in-memory state up to date with other processes (one stat when nothing changed). */
  refresh(): void {
    if (this.closed) throw closedError();
    this.journal.refresh();
  }

  /** Run `fn` under the images lock with a fresh state. */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    if (this.memory) {
      const run = this.#queue.then(fn, fn);
      this.#queue = run.catch(() => {});
      return run;
    }
    return withLock(this.root, IMAGES_LOCK, async () => {
      this.journal.refresh();
      return fn();
    });
  }

  /** Append records (under the lock), then compact when worthwhile. */
  async append(ops: Op[]): Promise<void> {
    await this.journal.append(ops);
    if (this.journal.shouldCompact()) await this.journal.compact();
  }

  /** Rewrite index.json from the state if it differs (under the lock). Returns whether it was written. */
  async writeIndex(): Promise<boolean> {
    if (this.memory) {
      const want = renderIndex(this.state, []);
      const changed = want !== this.memoryIndex;
      this.memoryIndex = want;
      return changed;
    }
    const read = await readIndex(this.root);
    const want = renderIndex(this.state, read.foreign);
    const file = path.join(this.root, INDEX_FILE);
    if (read.exists && !read.error) {
      const have = await fsp.readFile(file, "utf8").catch(() => "");
      if (have === want) return false;
    }
    await writeFileAtomic(file, want);
    return true;
  }

  record(id: Digest): ImageRecord {
    const rec = this.state.images.get(id);
    if (!rec) throw imageNotFound(id);
    return rec;
  }

  async readVerified(d: Digest, what: string): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      bytes = await this.content.readBytes(d, MAX_DOCUMENT_SIZE);
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new DataIntegrityError(`${what} ${d}: blob missing from the store (run fsck)`, {
          code: "ERR_BLOB_MISSING",
          cause: err,
          details: { digest: d },
        });
      }
      throw err;
    }
    const got = sha256(bytes);
    if (got !== d) {
      throw new DataIntegrityError(`${what} ${d}: stored blob hashes to ${got} (run fsck)`, {
        code: "ERR_DIGEST_MISMATCH",
        details: { digest: d, actual: got },
      });
    }
    return bytes;
  }
}

/** The layer chain of a ChainID, bottom first. */
async function layerChain(layers: LayerStore, chainID: Digest): Promise<Layer[]> {
  const out: Layer[] = [];
  let cur: Digest | null = chainID;
  while (cur !== null) {
    const l: Layer = await layers.get(cur);
    out.push(l);
    cur = l.parent;
    if (out.length > 10_000) {
      throw new DataIntegrityError(`layer chain ${chainID} is longer than 10000 layers (cycle?)`, { code: "ERR_LAYER_CHAIN" });
    }
  }
  return out.reverse();
}

/** Build the OCI manifest of an image: config descriptor + the stored layer blobs. */
export function buildManifest(configDigest: Digest, configSize: number, chain: readonly Layer[]): Uint8Array {
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configDigest, size: configSize },
    layers: chain.map((l): Descriptor => ({ mediaType: l.blob.mediaType, digest: l.blob.digest, size: l.blob.size })),
  };
  return new TextEncoder().encode(JSON.stringify(manifest));
}

/** Filesystem {@link ImageStore}. */
export class FsImageStore implements ImageStore {
  readonly #core: Core;
  readonly #gc: () => Promise<GcResult>;

  /** @internal */
  constructor(core: Core, gc: () => Promise<GcResult>) {
    this.#core = core;
    this.#gc = gc;
  }

  async create(configBytes: Uint8Array | string, opts: CreateImageOptions = {}): Promise<Image> {
    const [id] = await this.createMany([configBytes], opts);
    return this.get(id!);
  }

  /**
   * Create several images under one lock and one journal write (bulk import).
   * Every config is validated and every rootfs looked up before anything is
   * written, so bad input leaves the store unchanged. Returns the IDs in order.
   */
  async createMany(configs: Iterable<Uint8Array | string>, opts: CreateImageOptions = {}): Promise<Digest[]> {
    const core = this.#core;
    core.refresh();
    const chains = new Map<Digest, Layer[]>();
    const prepared: Array<{ id: Digest; bytes: Uint8Array; manifest: Uint8Array; op: Op; chainID: Digest | null }> = [];
    const ids: Digest[] = [];
    for (const c of configs) {
      const p = await this.#prepare(c, chains);
      ids.push(p.id);
      if (!core.state.images.has(p.id)) prepared.push(p);
    }
    if (prepared.length === 0) return ids;
    const putOpts = opts.lease ? { lease: opts.lease } : {};
    // Blobs are written under the images lock: GC takes the same lock, so it
    // can never sweep a config or manifest between its write and its record.
    await core.locked(async () => {
      const ops: Op[] = [];
      const seen = new Set<Digest>();
      const todo = prepared.filter((p) => {
        if (core.state.images.has(p.id) || seen.has(p.id)) return false;
        seen.add(p.id);
        return true;
      });
      // A few at a time: the file system work of one overlaps the waits of another.
      const one = async (p: (typeof todo)[number]) => {
        await core.content.put(p.bytes, { digest: p.id, size: p.bytes.length }, putOpts);
        await core.content.put(p.manifest, { digest: p.op[3] as Digest, size: p.manifest.length }, putOpts);
        if (p.chainID !== null) await core.layers.acquire(p.chainID, IMAGE_HOLDER_PREFIX + p.id);
        ops.push(p.op);
      };
      try {
        for (let i = 0; i < todo.length; i += CREATE_CONCURRENCY) {
          const results = await Promise.allSettled(todo.slice(i, i + CREATE_CONCURRENCY).map(one));
          const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
          if (failed) throw failed.reason;
        }
      } finally {
        // Whatever was fully prepared is recorded, even when a later one failed.
        await core.append(ops);
      }
    });
    return ids;
  }

  async #prepare(
    configBytes: Uint8Array | string,
    chains: Map<Digest, Layer[]>,
  ): Promise<{ id: Digest; bytes: Uint8Array; manifest: Uint8Array; op: Op; chainID: Digest | null }> {
    const core = this.#core;
    const bytes = byteView(configBytes);
    const config = parseImageConfig(bytes, "image config");
    const diffIds = config.rootfs.diff_ids ?? [];
    const nonEmpty = nonEmptyLayerCount(config);
    if (nonEmpty > diffIds.length) {
      throw new InvalidArgumentError(
        `invalid image config: too many non-empty layers in History section (${nonEmpty} history entries make a layer, rootfs has ${diffIds.length} diff_ids)`,
        { code: "ERR_INVALID_CONFIG", details: { nonEmpty, diffIds: diffIds.length } },
      );
    }
    const id = sha256(bytes);
    const chainID = diffIds.length > 0 ? chainId(diffIds)! : null;
    let chain: Layer[] = [];
    if (chainID !== null) {
      const cached = chains.get(chainID);
      if (cached) chain = cached;
      else {
        try {
          chain = await layerChain(core.layers, chainID);
        } catch (err) {
          if (err instanceof NotFoundError) {
            throw new NotFoundError(
              `image ${id}: its rootfs (${diffIds.length} layer${diffIds.length === 1 ? "" : "s"}, ChainID ${chainID}) is not in the layer store; register the layers first`,
              { code: "ERR_LAYER_NOT_FOUND", cause: err, details: { id, chainID } },
            );
          }
          throw err;
        }
        chain.forEach((l, i) => {
          if (l.diffID !== diffIds[i]) {
            throw new DataIntegrityError(`layer ${l.chainID} has DiffID ${l.diffID}, config says ${diffIds[i]}`, {
              code: "ERR_LAYER_CHAIN",
            });
          }
        });
        chains.set(chainID, chain);
      }
    }
    const manifest = buildManifest(id, bytes.length, chain);
    const manifestDigest = sha256(manifest);
    // dockerd's image size: the layers' file sizes (the tar size for layers recorded without it)
    const size = chain.reduce((n, l) => n + (l.contentSize ?? l.size), 0);
    const op: Op = ["c", id, chainID, manifestDigest, manifest.length, bytes.length, size, platformString(config), Date.now()];
    return { id, bytes, manifest, op, chainID };
  }

  async get(idArg: Digest | string): Promise<Image> {
    const core = this.#core;
    const id = parseImageId(idArg);
    core.refresh();
    const rec = core.record(id);
    const configBytes = await core.readVerified(id, "image config");
    const config = parseImageConfig(configBytes, `image config ${id}`);
    const image: Image = {
      id,
      config,
      configBytes,
      chainID: rec.chainID,
      manifestDigest: rec.manifest,
      manifestSize: rec.manifestSize,
      size: rec.size,
    };
    if (rec.parent) image.parent = rec.parent;
    return image;
  }

  async has(idArg: Digest | string): Promise<boolean> {
    const id = parseImageId(idArg);
    this.#core.refresh();
    return this.#core.state.images.has(id);
  }

  async delete(idArg: Digest | string, opts: DeleteOptions = {}): Promise<DeleteResult> {
    const core = this.#core;
    const id = parseImageId(idArg);
    const result = await core.locked(async () => {
      const rec = core.record(id);
      const untagged = sorted(core.state.refsById.get(id) ?? []);
      const indexed = untagged.some(hasIndexEntry);
      await core.append([["d", id]]);
      const releasedLayers: Digest[] = [];
      if (rec.chainID !== null) {
        try {
          await core.layers.release(rec.chainID, IMAGE_HOLDER_PREFIX + id);
        } catch (err) {
          // Already gone (a repaired store): nothing to release. fsck reports other states.
          if (!(err instanceof NotFoundError)) throw err;
        }
        releasedLayers.push(rec.chainID);
      }
      if (indexed) await core.writeIndex();
      const r: DeleteResult = { deleted: [id], releasedLayers, untagged };
      return r;
    });
    if (opts.prune) result.gc = await this.#gc();
    return result;
  }

  async search(prefixOrId: string): Promise<Digest> {
    const core = this.#core;
    if (typeof prefixOrId !== "string" || !HEX_PREFIX_RE.test(prefixOrId)) {
      throw new DigestFormatError(`invalid image ID prefix ${JSON.stringify(String(prefixOrId).slice(0, 100))}: expected hex`, {
        details: { prefix: prefixOrId },
      });
    }
    core.refresh();
    try {
      return core.state.ids.lookup(prefixOrId);
    } catch (err) {
      if (err instanceof NotFoundError) throw imageNotFound(prefixOrId);
      if (err instanceof AmbiguousPrefixError) {
        throw new AmbiguousPrefixError(`image ID prefix ${JSON.stringify(prefixOrId)} matches more than one image`, {
          details: { prefix: prefixOrId },
        });
      }
      throw err;
    }
  }

  async setParent(idArg: Digest | string, parentArg: Digest | string | null): Promise<void> {
    const core = this.#core;
    const id = parseImageId(idArg);
    const parent = parentArg === null ? null : parseImageId(parentArg, "parent image ID");
    await core.locked(async () => {
      core.record(id);
      if (parent !== null) {
        core.record(parent);
        for (let cur: Digest | undefined = parent; cur !== undefined; cur = core.state.images.get(cur)?.parent) {
          if (cur === id) {
            throw new InvalidArgumentError(`cannot make ${parent} the parent of ${id}: that would make a cycle`, {
              code: "ERR_INVALID_PARENT",
              details: { id, parent },
            });
          }
        }
      }
      if ((core.state.images.get(id)?.parent ?? null) === parent) return;
      await core.append([["p", id, parent]]);
    });
  }

  async getParent(idArg: Digest | string): Promise<Digest | undefined> {
    const id = parseImageId(idArg);
    this.#core.refresh();
    return this.#core.record(id).parent;
  }

  async children(idArg: Digest | string): Promise<Digest[]> {
    const id = parseImageId(idArg);
    this.#core.refresh();
    this.#core.record(id);
    return sorted(this.#core.state.children.get(id) ?? []);
  }

  async heads(): Promise<Digest[]> {
    const core = this.#core;
    core.refresh();
    const out: Digest[] = [];
    for (const id of core.state.images.keys()) if (!core.state.children.has(id)) out.push(id);
    return out.sort();
  }

  async map(): Promise<Map<Digest, Image>> {
    this.#core.refresh();
    const out = new Map<Digest, Image>();
    for (const id of sorted(this.#core.state.images.keys())) out.set(id, await this.get(id));
    return out;
  }

  async ids(): Promise<Digest[]> {
    this.#core.refresh();
    return sorted(this.#core.state.images.keys());
  }

  async len(): Promise<number> {
    this.#core.refresh();
    return this.#core.state.images.size;
  }

  async setLastUpdated(idArg: Digest | string, date: Date = new Date()): Promise<void> {
    const id = parseImageId(idArg);
    const ms = date.getTime();
    if (!Number.isFinite(ms)) throw new InvalidArgumentError("setLastUpdated: invalid date", { code: "ERR_INVALID_DATE" });
    await this.#core.locked(async () => {
      this.#core.record(id);
      await this.#core.append([["u", id, ms]]);
    });
  }

  async getLastUpdated(idArg: Digest | string): Promise<Date | undefined> {
    const id = parseImageId(idArg);
    this.#core.refresh();
    const ms = this.#core.record(id).lastUpdated;
    return ms === undefined ? undefined : new Date(ms);
  }

  async setBuiltLocally(idArg: Digest | string): Promise<void> {
    const id = parseImageId(idArg);
    await this.#core.locked(async () => {
      if (this.#core.record(id).builtLocally) return;
      await this.#core.append([["b", id]]);
    });
  }

  async isBuiltLocally(idArg: Digest | string): Promise<boolean> {
    const id = parseImageId(idArg);
    this.#core.refresh();
    return this.#core.record(id).builtLocally === true;
  }

  async manifest(idArg: Digest | string): Promise<{ digest: Digest; bytes: Uint8Array; manifest: OciManifest }> {
    const id = parseImageId(idArg);
    this.#core.refresh();
    const rec = this.#core.record(id);
    const bytes = await this.#core.readVerified(rec.manifest, `manifest of image ${id}`);
    return { digest: rec.manifest, bytes, manifest: parseManifest(bytes, `manifest ${rec.manifest}`) };
  }
}

/** Filesystem {@link ReferenceStore}: references in the metadata journal, tags mirrored into `index.json`. */
export class FsReferenceStore implements ReferenceStore {
  readonly #core: Core;

  /** @internal */
  constructor(core: Core) {
    this.#core = core;
  }

  async tag(refArg: string, idArg: Digest | string, opts: TagOptions = {}): Promise<{ ref: string; previous?: Digest }> {
    const core = this.#core;
    const ref = parseReference(refArg);
    if (ref.tag !== undefined && ref.digest !== undefined) {
      throw new InvalidArgumentError(`invalid reference ${JSON.stringify(refArg)}: refusing to create a tag with a digest reference`, {
        code: "ERR_INVALID_REFERENCE",
        details: { reference: refArg },
      });
    }
    const id = parseImageId(idArg);
    return core.locked(async () => {
      core.record(id);
      const old = core.state.refs.get(ref.string);
      if (old === id) return { ref: ref.string };
      if (old !== undefined) {
        if (ref.digest !== undefined) {
          throw new AlreadyExistsError(`cannot overwrite digest reference ${ref.string}: it points at image ${old}`, {
            code: "ERR_TAG_CONFLICT",
            details: { ref: ref.string, existing: old, id },
          });
        }
        if (!opts.force) {
          throw new AlreadyExistsError(
            `conflict: tag ${ref.familiar} is already set to image ${old}; use force to move it to ${id}`,
            { code: "ERR_TAG_CONFLICT", details: { ref: ref.string, existing: old, id } },
          );
        }
      }
      await core.append([["t", ref.string, id]]);
      if (hasIndexEntry(ref.string)) await core.writeIndex();
      return old === undefined ? { ref: ref.string } : { ref: ref.string, previous: old };
    });
  }

  async untag(refArg: string): Promise<Digest> {
    const core = this.#core;
    const ref = parseReference(refArg);
    return core.locked(async () => {
      const id = core.state.refs.get(ref.string);
      if (id === undefined) {
        throw new NotFoundError(`no such reference: ${ref.familiar}`, {
          code: "ERR_REFERENCE_NOT_FOUND",
          details: { ref: ref.string },
        });
      }
      await core.append([["r", ref.string]]);
      if (hasIndexEntry(ref.string)) await core.writeIndex();
      return id;
    });
  }

  async resolve(input: string): Promise<Digest> {
    const core = this.#core;
    if (typeof input !== "string" || input.length === 0) {
      throw new InvalidArgumentError(`invalid reference ${JSON.stringify(input)}: empty`, { code: "ERR_INVALID_REFERENCE" });
    }
    core.refresh();
    const state = core.state;
    if (FULL_HEX_RE.test(input) || /^sha256:[a-f0-9]{64}$/.test(input)) {
      const id = parseImageId(input);
      if (state.images.has(id)) return id;
      throw imageNotFound(input);
    }
    let ref: Reference | undefined;
    let refError: unknown;
    try {
      ref = parseReference(input);
    } catch (err) {
      refError = err;
    }
    if (ref) {
      const id = state.refs.get(ref.string);
      if (id !== undefined) return id;
      if (ref.digest !== undefined) {
        // name@<manifest digest or image ID> of an image that carries that name.
        const candidate = state.byManifest.get(ref.digest) ?? (state.images.has(ref.digest) ? ref.digest : undefined);
        if (candidate !== undefined) {
          for (const r of state.refsById.get(candidate) ?? []) {
            if (r.startsWith(`${ref.name}:`) || r.startsWith(`${ref.name}@`)) return candidate;
          }
        }
      }
    }
    if (HEX_PREFIX_RE.test(input)) {
      try {
        return state.ids.lookup(input);
      } catch (err) {
        if (err instanceof AmbiguousPrefixError) {
          throw new AmbiguousPrefixError(`image ID prefix ${JSON.stringify(input)} matches more than one image`, {
            details: { prefix: input },
          });
        }
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    if (!ref) throw refError;
    throw imageNotFound(input);
  }

  async referencesOf(idArg: Digest | string): Promise<string[]> {
    const id = parseImageId(idArg);
    this.#core.refresh();
    this.#core.record(id);
    return sorted(this.#core.state.refsById.get(id) ?? []);
  }

  async list(): Promise<Array<{ ref: string; id: Digest }>> {
    this.#core.refresh();
    return sorted(this.#core.state.refs.keys()).map((ref) => ({ ref, id: this.#core.state.refs.get(ref)! }));
  }
}

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** Store root directory (created when missing). */
  root: string;
}

/**
 * The layer store as `Store.layers` exposes it: the same object, except that
 * `gc` and `fsck` also keep what images reference (so calling them directly
 * can never delete an image's config or manifest).
 */
function wrapLayers(
  layers: LayerStore,
  gc: (opts?: GcOptions) => Promise<GcResult>,
  fsck: (opts?: LayerFsckOptions) => Promise<LayerFsckReport>,
): LayerStore {
  return new Proxy(layers, {
    get(target, prop) {
      if (prop === "gc") return gc;
      if (prop === "fsck") return fsck;
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** The digests of a GC roots option (an iterable, or a function returning one). */
async function rootList(roots: unknown): Promise<Iterable<Digest | string>> {
  if (roots === undefined || roots === null) return [];
  if (typeof roots === "function") return (await (roots as () => unknown)()) as Iterable<Digest | string>;
  return roots as Iterable<Digest | string>;
}

/** Filesystem {@link Store}. */
export class FsStore implements Store {
  readonly root: string;
  readonly images: FsImageStore;
  readonly references: FsReferenceStore;
  readonly layers: LayerStore;
  readonly #core: Core;

  /** @internal */
  constructor(core: Core) {
    this.#core = core;
    this.root = core.root;
    this.images = new FsImageStore(core, () => this.gc());
    this.references = new FsReferenceStore(core);
    this.layers = wrapLayers(
      core.layers,
      (opts) => this.gc(opts),
      (opts) =>
        core.locked(async () => {
          const roots = await this.roots();
          for (const d of await rootList(opts?.keepBlobs)) roots.blobs.add(parseDigest(String(d)));
          return core.layers.fsck({ ...opts, keepBlobs: roots.blobs });
        }),
    );
  }

  get content(): ContentStore {
    return this.#core.content;
  }

  lease(): Promise<Lease> {
    if (this.#core.closed) return Promise.reject(closedError());
    return this.#core.layers.lease();
  }

  /** Blobs and layers every image (and other tools' index.json entries) need. @internal */
  async roots(): Promise<{ blobs: Set<Digest>; layers: Set<Digest> }> {
    const core = this.#core;
    const blobs = new Set<Digest>();
    const layers = new Set<Digest>();
    for (const rec of core.state.images.values()) {
      blobs.add(rec.id);
      blobs.add(rec.manifest);
      if (rec.chainID) layers.add(rec.chainID);
    }
    // Manifests other tools listed in index.json (e.g. `skopeo copy … oci:<root>:x`): keep them and what they name.
    const foreign = core.memory ? [] : (await readIndex(core.root)).foreign;
    for (const d of foreign) {
      blobs.add(d.digest);
      try {
        const m = parseManifest(await core.content.readBytes(d.digest, MAX_DOCUMENT_SIZE), `manifest ${d.digest}`);
        blobs.add(m.config.digest);
        for (const l of m.layers) blobs.add(l.digest);
      } catch {
        // Not a readable manifest (an index, or missing): keep the blob itself only.
      }
    }
    return { blobs, layers };
  }

  gc(opts: GcOptions = {}): Promise<GcResult> {
    const core = this.#core;
    // Under the images lock: no image can be created (or its blobs become
    // unprotected) between computing the roots and sweeping.
    return core.locked(async () => {
      const roots = await this.roots();
      for (const d of await rootList(opts.keepBlobs)) roots.blobs.add(parseDigest(String(d)));
      for (const d of await rootList(opts.keepLayers)) roots.layers.add(parseDigest(String(d)));
      const gcOpts: GcOptions = { ...opts, keepBlobs: roots.blobs, keepLayers: roots.layers };
      return core.layers.gc(gcOpts);
    });
  }

  fsck(opts: FsckOptions = {}): Promise<FsckReport> {
    return fsck(this, this.#core, opts);
  }

  async close(): Promise<void> {
    if (this.#core.closed) return;
    this.#core.closed = true;
    this.#core.journal.close();
    await this.#core.layers.close();
  }
}

async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.endsWith(TEMP_SUFFIX)) continue;
    // writeFileAtomic names temps `<file>.<pid>[-<start>].<random>.berth-tmp`.
    const m = /\.(\d+)(?:-[\d-]+)?\.[0-9a-f]+\.berth-tmp$/.exec(name);
    const pid = m ? Number(m[1]) : Number.NaN;
    let alive = false;
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === "EPERM";
      }
    }
    if (alive && pid !== process.pid) continue;
    if (alive && pid === process.pid) continue;
    await fsp.rm(path.join(dir, name), { force: true });
    removed.push(path.join(dir, name));
  }
  return removed;
}

/**
 * Open (creating when missing) the store at `root`: the layer store, the image
 * metadata, and the OCI layout files (`oci-layout`, `index.json`).
 *
 * @throws InvalidArgumentError `ERR_INVALID_ROOT` for an empty root
 * @throws DataIntegrityError `ERR_METADATA_CORRUPT` when the image snapshot is damaged beyond the torn-tail case
 */
export async function openStore(opts: OpenStoreOptions): Promise<FsStore> {
  if (!opts || typeof opts.root !== "string" || opts.root.length === 0) {
    throw new InvalidArgumentError("openStore: root must be a non-empty path", { code: "ERR_INVALID_ROOT" });
  }
  const root = path.resolve(opts.root);
  const layers = await openLayerStore({ root });
  const journal = new Journal(root, { writeFileAtomic, fsyncDir });
  await fsp.mkdir(journal.dir, { recursive: true });
  journal.load();
  const core = new Core(root, layers, journal);
  // The OCI layout files: create when missing, bring index.json in line with the journal.
  const layoutFile = path.join(root, OCI_LAYOUT_FILE);
  const layout = await fsp.readFile(layoutFile, "utf8").catch(() => undefined);
  const index = await readIndex(root);
  const needIndex = !index.exists || index.error !== undefined || renderIndex(core.state, index.foreign) !== (await fsp.readFile(path.join(root, INDEX_FILE), "utf8").catch(() => ""));
  if (layout === undefined || needIndex) {
    await core.locked(async () => {
      await removeStaleTemps(journal.dir);
      if ((await fsp.readFile(layoutFile, "utf8").catch(() => undefined)) === undefined) {
        await writeFileAtomic(layoutFile, OCI_LAYOUT_CONTENT);
      }
      await core.writeIndex();
    });
  }
  return new FsStore(core);
}

/**
 * An in-memory store (same API and semantics, nothing on disk) over
 * `@berth/layer-store`'s in-memory layer store: for tests of other packages and
 * for runtimes without a file system. Single process; `fsck` checks images,
 * references and the layer store; there is no `index.json`.
 */
export async function openMemoryStore(): Promise<FsStore> {
  const core = new Core("memory:", createMemoryLayerStore(), new MemoryLog(), true);
  return new FsStore(core);
}

// ---------------------------------------------------------------------------
// fsck

async function fsck(store: FsStore, core: Core, opts: FsckOptions): Promise<FsckReport> {
  const repair = opts.repair === true;
  const problems: FsckProblem[] = [];
  const checked = { blobs: 0, images: 0, references: 0, layers: 0 };
  const root = core.root;
  const blobPath = (d: string) => path.join(root, "blobs", "sha256", d.slice(7));
  const add = (p: Omit<FsckProblem, "repaired">, repaired = false) => problems.push({ ...p, repaired });

  // 1. Blobs and layers: the layer store's fsck re-hashes every blob and
  // decompresses every layer; blobs referenced by nothing (not even an image's
  // config or manifest) are orphans it removes with `repair`.
  const layerReport = await core.locked(async () => {
    const roots = await store.roots();
    return core.layers.fsck({ repair, keepBlobs: roots.blobs });
  });
  checked.blobs = layerReport.checkedBlobs;
  for (const p of layerReport.problems) {
    const problem: FsckProblem = { kind: p.kind, path: p.path, message: p.message, repaired: p.repaired };
    if (p.digest !== undefined) problem.subject = p.digest;
    problems.push(problem);
  }

  // 2. Layers.
  const layerList = await core.layers.list().catch((err: Error) => {
    add({ kind: "layers-unreadable", path: path.join(root, "layers"), message: err.message });
    return [] as Layer[];
  });
  const layersById = new Map<Digest, Layer>();
  for (const l of layerList) {
    checked.layers++;
    layersById.set(l.chainID, l);
    if (!(await core.content.has(l.blob.digest))) {
      add({ kind: "layer-blob-missing", path: blobPath(l.blob.digest), subject: l.chainID, message: `layer ${l.chainID}: blob ${l.blob.digest} missing` });
    }
    if (l.parent !== null && !layersById.has(l.parent) && !(await core.layers.has(l.parent))) {
      add({ kind: "layer-parent-missing", path: path.join(root, "layers"), subject: l.chainID, message: `layer ${l.chainID}: parent ${l.parent} missing` });
    }
  }

  // Holders per layer, listed once (many images share a layer).
  const holderCache = new Map<Digest, Set<string>>();
  const holdersOf = async (chainID: Digest): Promise<Set<string>> => {
    let set = holderCache.get(chainID);
    if (!set) holderCache.set(chainID, (set = new Set(await core.layers.holders(chainID))));
    return set;
  };

  await core.locked(async () => {
    const state = core.state;
    const ops: Op[] = [];
    // 3. The journal itself.
    for (const p of core.journal.problems) {
      add({ kind: p.tornTail ? "journal-torn-tail" : "journal-corrupt-record", path: p.path, message: p.message }, repair);
    }
    // 4. Images: config, manifest, layers, holds, parents.
    for (const rec of state.images.values()) {
      checked.images++;
      const id = rec.id;
      try {
        const cfg = parseImageConfig(await core.readVerified(id, "image config"), `image config ${id}`);
        const want = (cfg.rootfs.diff_ids ?? []).length ? chainId(cfg.rootfs.diff_ids) : null;
        if (want !== rec.chainID) {
          add({ kind: "image-chain-mismatch", path: blobPath(id), subject: id, message: `image ${id}: config ChainID ${want} but record says ${rec.chainID}` });
        }
      } catch (err) {
        add({ kind: "image-config-bad", path: blobPath(id), subject: id, message: (err as Error).message });
      }
      try {
        const m = parseManifest(await core.readVerified(rec.manifest, `manifest of image ${id}`), `manifest ${rec.manifest}`);
        if (m.config.digest !== id) {
          add({ kind: "image-manifest-mismatch", path: blobPath(rec.manifest), subject: id, message: `manifest ${rec.manifest} names config ${m.config.digest}, not ${id}` });
        }
        for (const l of m.layers) {
          if (!(await core.content.has(l.digest))) {
            add({ kind: "image-layer-blob-missing", path: blobPath(l.digest), subject: id, message: `image ${id}: layer blob ${l.digest} missing` });
          }
        }
      } catch (err) {
        add({ kind: "image-manifest-bad", path: blobPath(rec.manifest), subject: id, message: (err as Error).message });
      }
      if (rec.chainID !== null) {
        if (!layersById.has(rec.chainID)) {
          add({ kind: "image-layer-missing", path: path.join(root, "layers"), subject: id, message: `image ${id}: layer ${rec.chainID} missing from the layer store` });
        } else {
          const holders = await holdersOf(rec.chainID);
          if (!holders.has(IMAGE_HOLDER_PREFIX + id)) {
            let fixed = false;
            if (repair) {
              await core.layers.acquire(rec.chainID, IMAGE_HOLDER_PREFIX + id);
              fixed = true;
            }
            add({ kind: "image-hold-missing", path: path.join(root, "layers", "refs"), subject: id, message: `image ${id} does not hold its layer ${rec.chainID}` }, fixed);
          }
        }
      }
      if (rec.parent !== undefined && !state.images.has(rec.parent)) {
        if (repair) ops.push(["p", id, null]);
        add({ kind: "image-parent-missing", path: core.journal.journalPath, subject: id, message: `image ${id}: parent ${rec.parent} missing` }, repair);
      }
    }
    // 5. References.
    for (const [ref, id] of state.refs) {
      checked.references++;
      if (!state.images.has(id)) {
        if (repair) ops.push(["r", ref]);
        add({ kind: "reference-dangling", path: core.journal.journalPath, subject: ref, message: `reference ${ref} points at missing image ${id}` }, repair);
      }
    }
    // 6. Orphan holds: `image:<id>` holders of images that do not exist (a create or delete interrupted).
    for (const l of layerList) {
      for (const h of await holdersOf(l.chainID)) {
        if (!h.startsWith(IMAGE_HOLDER_PREFIX)) continue;
        const hid = h.slice(IMAGE_HOLDER_PREFIX.length) as Digest;
        if (state.images.has(hid) && state.images.get(hid)?.chainID === l.chainID) continue;
        let fixed = false;
        if (repair) {
          await core.layers.release(l.chainID, h).catch(() => {});
          fixed = true;
        }
        add({ kind: "layer-hold-orphan", path: path.join(root, "layers", "refs"), subject: l.chainID, message: `layer ${l.chainID} held by ${h}, which is no image` }, fixed);
      }
    }
    if (ops.length) await core.append(ops);
    // 7. The OCI layout (filesystem stores).
    if (core.memory) return;
    const layout = await fsp.readFile(path.join(root, OCI_LAYOUT_FILE), "utf8").catch(() => undefined);
    if (layout === undefined || JSON.parse(layout || "{}").imageLayoutVersion === undefined) {
      if (repair) await writeFileAtomic(path.join(root, OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT);
      add({ kind: "layout-bad", path: path.join(root, OCI_LAYOUT_FILE), message: "oci-layout missing or invalid" }, repair);
    }
    const index = await readIndex(root);
    const want = renderIndex(state, index.foreign);
    const have = await fsp.readFile(path.join(root, INDEX_FILE), "utf8").catch(() => undefined);
    if (have !== want) {
      if (repair) await core.writeIndex();
      add({ kind: "index-stale", path: path.join(root, INDEX_FILE), message: index.error ? index.error.message : "index.json does not match the tags" }, repair);
    }
    for (const d of index.foreign) {
      if (!(await core.content.has(d.digest))) {
        add({ kind: "index-foreign-missing", path: path.join(root, INDEX_FILE), subject: d.digest, message: `index.json entry (not berth's) names missing blob ${d.digest}` });
      }
    }
    if (repair) {
      await core.journal.compact();
      await removeStaleTemps(core.journal.dir);
    }
  });

  let gc: GcResult | undefined;
  if (repair) {
    gc = await store.gc();
  }
  const report: FsckReport = { ok: problems.every((p) => p.repaired || p.kind === "journal-torn-tail"), problems, checked };
  if (gc) report.gc = gc;
  return report;
}
