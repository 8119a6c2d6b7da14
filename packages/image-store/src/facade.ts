/**
 * The store facade: one object over a root's images, references, layers and
 * blobs, whose GC and fsck keep what images (and other tools' `index.json`
 * entries) reference.
 * @module
 */
import { type Digest, parseDigest } from "@berth/digest";
import type {
  ContentStore,
  GcOptions,
  GcResult,
  FsckOptions as LayerFsckOptions,
  FsckReport as LayerFsckReport,
  LayerStore,
  Lease,
} from "@berth/layer-store";
import { parseManifest } from "@berth/oci";
import type { FsckOptions, FsckReport, Store } from "./api.js";
import { type Core, MAX_DOCUMENT_SIZE } from "./core.js";
import { closedError } from "./errors.js";
import { fsck, orphanImageHolds } from "./fsck.js";
import { FsImageStore } from "./images.js";
import { readIndex } from "./layout.js";
import { FsPinStore, MemoryPinStore, type PinStore } from "./pins.js";
import { FsReferenceStore } from "./references.js";

/**
 * The layer store as `Store.layers` exposes it: each call goes to the root's
 * layer store (methods bound to it, as before), except `gc` and `fsck`, which
 * also keep what images reference (so calling them directly can never delete
 * an image's config or manifest). Nothing beyond the `LayerStore` contract is.
 */
function wrapLayers(
  layers: LayerStore,
  gc: (opts?: GcOptions) => Promise<GcResult>,
  fsck: (opts?: LayerFsckOptions) => Promise<LayerFsckReport>,
): LayerStore {
  return {
    get content() {
      return layers.content;
    },
    register: layers.register.bind(layers),
    ingestLayer: layers.ingestLayer.bind(layers),
    recordLayer: layers.recordLayer.bind(layers),
    get: layers.get.bind(layers),
    has: layers.has.bind(layers),
    list: layers.list.bind(layers),
    acquire: layers.acquire.bind(layers),
    leaseLayer: layers.leaseLayer.bind(layers),
    release: layers.release.bind(layers),
    holders: layers.holders.bind(layers),
    open: layers.open.bind(layers),
    openUncompressed: layers.openUncompressed.bind(layers),
    lease: layers.lease.bind(layers),
    leased: layers.leased.bind(layers),
    hasGarbage: layers.hasGarbage.bind(layers),
    gc,
    fsck,
    close: layers.close.bind(layers),
  };
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
  readonly pins: PinStore;
  readonly #core: Core;

  /** @internal */
  constructor(core: Core) {
    this.#core = core;
    this.root = core.root;
    this.images = new FsImageStore(core, () => this.gc());
    this.references = new FsReferenceStore(core);
    this.pins = core.memory ? new MemoryPinStore() : new FsPinStore(core.root);
    this.layers = wrapLayers(
      core.layers,
      (opts) => this.gc(opts),
      (opts) =>
        core.locked(async () => {
          const given = await rootList(opts?.keepBlobs);
          // asked for after the live leases, as fsck does (see fsck.ts)
          const roots = async () => {
            const more = opts?.roots ? await opts.roots() : {};
            return { blobs: [...(await this.roots()).blobs, ...given, ...(more.blobs ?? [])] };
          };
          const { keepBlobs: _given, ...rest } = opts ?? {};
          return core.layers.fsck({ ...rest, roots });
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

  readDocument(digest: Digest): Promise<Uint8Array> {
    if (this.#core.closed) return Promise.reject(closedError());
    return this.#core.readDocument(parseDigest(digest), "document");
  }

  /** Blobs and layers every image, pin (and other tools' index.json entries) need. @internal */
  async roots(): Promise<{ blobs: Set<Digest>; layers: Set<Digest> }> {
    const core = this.#core;
    // A pin record that cannot be read throws: no GC rather than losing what it keeps.
    const blobs = await this.pins.blobs();
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
      // Pins are read again after the live leases (the layer store calls `roots` then): a
      // component that commits under a lease and pins before releasing it never loses a blob.
      const extra = opts.roots;
      const gcOpts: GcOptions = {
        ...opts,
        keepBlobs: roots.blobs,
        keepLayers: roots.layers,
        roots: async () => {
          const more = extra ? await extra() : {};
          return { blobs: [...(more.blobs ?? []), ...(await this.pins.blobs())], ...(more.layers ? { layers: more.layers } : {}) };
        },
      };
      return core.layers.gc(gcOpts);
    });
  }

  withoutGc<T>(fn: () => Promise<T>): Promise<T> {
    return this.#core.locked(fn);
  }

  async collectGarbage(): Promise<GcResult | undefined> {
    if (this.#core.closed) throw closedError();
    const core = this.#core;
    if (!(await core.layers.hasGarbage())) return undefined;
    // A killed create may have left holds of an image it never recorded: release them, then sweep.
    await core.locked(async () => {
      core.refresh();
      for (const { chainID, holder } of await orphanImageHolds(core, await core.layers.list())) await core.layers.release(chainID, holder).catch(() => {});
    });
    return this.gc();
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
