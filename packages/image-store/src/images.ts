/**
 * The image store (moby `image/store.go`): create, get, delete, prefix search,
 * parents and children, last-updated and built-locally marks, manifests.
 * Works through the root's {@link Core}; configs are verified on every read.
 * @module
 */
import { AmbiguousPrefixError, DataIntegrityError, type Digest, DigestFormatError, InvalidArgumentError, NotFoundError } from "@berth/digest";
import { type GcResult, type Layer, LayerStoreErrorCode } from "@berth/layer-store";
import { type OciManifest, parseImageConfig, parseManifest } from "@berth/oci";
import type { CreateImageOptions, DeleteOptions, DeleteResult, Image, ImageStore, MapOptions } from "./api.js";
import { type Core, IMAGE_HOLDER_PREFIX } from "./core.js";
import { HEX_PREFIX_RE, parseImageId, sorted } from "./ids.js";
import { imageNotFound, ImageStoreErrorCode } from "./errors.js";
import { hasIndexEntry } from "./layout.js";
import { type PreparedImage, prepareImage } from "./manifest.js";
import type { Op } from "./meta.js";

/** How many images `createMany` writes at once. */
const CREATE_CONCURRENCY = 8;
/** How many configs `map` reads at once. */
const READ_CONCURRENCY = 32;

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
    const prepared: PreparedImage[] = [];
    const ids: Digest[] = [];
    for (const c of configs) {
      const p = await prepareImage(core.layers, c, chains);
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
        // config and manifest side by side (their fsyncs overlap); either failing leaves only garbage
        throwFirstRejection(
          await Promise.allSettled([
            core.content.put(p.bytes, { digest: p.id, size: p.bytes.length }, putOpts),
            core.content.put(p.manifest, { digest: p.op[3] as Digest, size: p.manifest.length }, putOpts),
          ]),
        );
        if (p.chainID !== null) await core.layers.acquire(p.chainID, IMAGE_HOLDER_PREFIX + p.id);
        ops.push(p.op);
      };
      try {
        for (let i = 0; i < todo.length; i += CREATE_CONCURRENCY) {
          throwFirstRejection(await Promise.allSettled(todo.slice(i, i + CREATE_CONCURRENCY).map(one)));
        }
      } finally {
        // Whatever was fully prepared is recorded, even when a later one failed.
        await core.append(ops);
      }
    });
    return ids;
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
      if (opts.onlyIf) {
        const skipped: DeleteResult = { deleted: [], releasedLayers: [], untagged: [] };
        if (!core.state.images.has(id)) return skipped;
        const now = { references: sorted(core.state.refsById.get(id) ?? []), children: sorted(core.state.children.get(id) ?? []) };
        if (!opts.onlyIf(now)) return skipped;
      }
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
    if (opts.prune && result.deleted.length > 0) result.gc = await this.#gc();
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
              code: ImageStoreErrorCode.INVALID_PARENT,
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

  async parentless(): Promise<Digest[]> {
    const core = this.#core;
    core.refresh();
    const out: Digest[] = [];
    for (const rec of core.state.images.values()) if (rec.parent === undefined) out.push(rec.id);
    return out.sort();
  }

  async map(opts: MapOptions = {}): Promise<Map<Digest, Image>> {
    this.#core.refresh();
    const ids = sorted(this.#core.state.images.keys());
    const out = new Map<Digest, Image>();
    // several reads in flight: listing 1,000 images waits on the disk, not the CPU
    for (let i = 0; i < ids.length; i += READ_CONCURRENCY) {
      const batch = await Promise.all(ids.slice(i, i + READ_CONCURRENCY).map((id) => this.#usable(id)));
      for (const r of batch) {
        if (r.image) out.set(r.image.id, r.image);
        else if (r.reason) opts.onUnusable?.(r.id, r.reason);
      }
    }
    return out;
  }

  /**
   * The image, or why it cannot be used (config blob gone or damaged, layer
   * missing), or neither when another process deleted it since the listing.
   */
  async #usable(id: Digest): Promise<{ image: Image } | { image?: undefined; id: Digest; reason?: Error }> {
    const gone = () => {
      this.#core.refresh();
      return !this.#core.state.images.has(id);
    };
    let image: Image;
    try {
      image = await this.get(id);
    } catch (err) {
      if (gone()) return { id };
      if (err instanceof DataIntegrityError) return { id, reason: err };
      throw err;
    }
    if (image.chainID !== null && !(await this.#core.layers.has(image.chainID))) {
      if (gone()) return { id };
      const reason = new NotFoundError(`image ${id}: layer ${image.chainID} is missing (run fsck)`, {
        code: LayerStoreErrorCode.LAYER_NOT_FOUND,
        details: { id, chainID: image.chainID },
      });
      return { id, reason };
    }
    return { image };
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
    if (!Number.isFinite(ms)) throw new InvalidArgumentError("setLastUpdated: invalid date", { code: ImageStoreErrorCode.INVALID_DATE });
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

/** After `Promise.allSettled`: throw the first rejection's reason, if any. */
function throwFirstRejection(results: PromiseSettledResult<unknown>[]): void {
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}
