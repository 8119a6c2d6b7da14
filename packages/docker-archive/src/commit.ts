/**
 * Committing a plan to a store as one transaction.
 *
 * A {@link LoadTransaction} holds the load's lease (so GC leaves what it
 * writes alone until it ends) and records everything it does: blobs written
 * and ingest files still open, layers registered, images created, tags set
 * (with the image each tag named before). {@link commitPlan} registers layers
 * in chain order, creates the images, sets parents and applies the tags
 * through it. On failure, {@link LoadTransaction.rollback} undoes exactly what
 * was recorded, newest first: tags put back where they were (or removed),
 * images this load created deleted, open ingest files aborted; then
 * {@link LoadTransaction.end} sweeps the blobs and layers only its lease
 * protects. Images, tags, blobs and layers that were there before, or that a
 * concurrent operation holds, are never touched.
 * @module
 */
import { chainIds, type Digest, FailedPreconditionError, hasCode, NotFoundError, sha256 } from "@berth/digest";
import type { FileEntry } from "./entries.js";
import { ArchiveErrorCode } from "./errors.js";
import type { BlobSink } from "./ingest.js";
import type { LoadedImage, LoadedLayer, TagConflict } from "./load.js";
import type { AbsentLayer, PlannedImage } from "./plan.js";
import type { ArchiveBlobWriter, ArchiveFileWriter, ArchiveLease, ArchiveReferences, ArchiveStore } from "./store.js";

/** A tag to set, and whether it moves from another image. */
export interface TagStep {
  ref: string;
  id: Digest;
  force: boolean;
}

/** What {@link LoadTransaction} has done so far, in order. */
export interface TransactionRecord {
  /** Blobs committed to the content store (may have been there before). */
  blobs: Digest[];
  /** Layers this load added to the layer store (ChainIDs). */
  layers: Digest[];
  /** Images this load created. */
  images: Digest[];
  /** Tags set, with the image each named before (none: it was new). */
  tags: Array<{ ref: string; previous?: Digest }>;
}

type Committed = { digest: Digest; size: number; existed: boolean };

/** The load's writes to a store, recorded so that a failure undoes them. */
export class LoadTransaction implements BlobSink {
  readonly record: TransactionRecord = { blobs: [], layers: [], images: [], tags: [] };
  /** Ingest writers neither committed nor aborted yet. */
  private readonly open = new Set<{ abort(): Promise<void> }>();

  private constructor(
    readonly store: ArchiveStore,
    readonly lease: ArchiveLease,
  ) {
    if (store.content.fileWriter) this.fileWriter = () => this.track(store.content.fileWriter!({ lease: this.lease }));
  }

  /** Start a transaction: take a lease on `store`. */
  static async begin(store: ArchiveStore): Promise<LoadTransaction> {
    return new LoadTransaction(store, await store.lease());
  }

  /** A content writer under the lease, tracked until it commits or aborts. */
  writer(): Promise<ArchiveBlobWriter> {
    return this.track(this.store.content.writer({ lease: this.lease }));
  }

  /** A file writer for worker threads (when the content store has them), tracked likewise. */
  fileWriter?: () => Promise<ArchiveFileWriter>;

  /**
   * The layer `chainID` with `f` as its blob: found in the store, or
   * registered on `parent` (from the stored blob with its known DiffID when the
   * store can, else by reading the blob again).
   */
  async layer(f: FileEntry | AbsentLayer, at: { chainID: Digest; parent: Digest | null; diffID: Digest; maxLayer: number }): Promise<LoadedLayer> {
    const { store, lease } = this;
    if (await store.layers.has(at.chainID)) {
      const l = await store.layers.get(at.chainID);
      const blob = f.kind === "absent" ? storedBlob(l.blob) : { digest: f.digest, size: f.size, compression: f.compression ?? "none" };
      return { diffID: l.diffID, chainID: at.chainID, new: false, size: l.size, blob };
    }
    if (f.kind === "absent") throw absentLayer(f, at.chainID);
    const blob = { digest: f.digest, size: f.size, compression: f.compression ?? "none" };
    let l: { diffID: Digest; chainID: Digest; size: number; existed: boolean };
    if (f.stored && f.diffID && f.uncompressedSize !== undefined && f.compression && f.contentSize !== undefined && store.layers.recordLayer) {
      // Phase 2 only: the blob is in the content store and its facts were
      // learned (and its DiffID checked against the config) while it streamed in.
      const facts = { blob: { mediaType: "", digest: f.digest, size: f.size }, compression: f.compression, diffID: f.diffID, uncompressedSize: f.uncompressedSize, contentSize: f.contentSize };
      l = await store.layers.recordLayer(facts, at.parent, { lease });
    } else {
      const src = f.bytes ? [f.bytes] : await store.content.open(f.digest);
      l = await store.layers.register(src, at.parent, {
        expectedDiffID: at.diffID,
        expectedDigest: f.digest,
        expectedSize: f.size,
        maxUncompressedSize: at.maxLayer,
        lease,
      });
    }
    if (!l.existed) this.record.layers.push(l.chainID);
    return { diffID: l.diffID, chainID: l.chainID, new: !l.existed, size: l.size, blob };
  }

  /**
   * Create images from their configs (all at once when the store can: every
   * config validated, every rootfs looked up, before anything is written).
   * `existed` names those there before, which are never recorded as created.
   */
  async createImages(configs: Uint8Array[], existed: ReadonlySet<Digest>): Promise<void> {
    const { images } = this.store;
    const created = (id: Digest) => {
      if (!existed.has(id) && !this.record.images.includes(id)) this.record.images.push(id);
    };
    if (!images.createMany) {
      for (const c of configs) created((await images.create(c, { lease: this.lease })).id);
      return;
    }
    try {
      for (const id of await images.createMany(configs, { lease: this.lease })) created(id);
    } catch (err) {
      // A store may record the images it finished before one failed: those are this load's.
      for (const c of configs) {
        const id = sha256(c);
        if (!existed.has(id) && (await imageExists(this.store, id).catch(() => false))) created(id);
      }
      throw err;
    }
  }

  /** Point each `step.ref` at its `step.id` (as one write where the store can); returns the normalized refs, in order. */
  async tag(steps: readonly TagStep[]): Promise<string[]> {
    const { references } = this.store;
    const done = (r: { ref: string; previous?: Digest }) => {
      this.record.tags.push({ ref: r.ref, ...(r.previous ? { previous: r.previous } : {}) });
      return r.ref;
    };
    if (references.tagMany) return (await references.tagMany(steps)).map(done);
    const out: string[] = [];
    for (const s of steps) out.push(done(await references.tag(s.ref, s.id, { force: s.force })));
    return out;
  }

  /**
   * Undo what was recorded, newest first; each step is tried even when an
   * earlier one failed. Returns the errors of the steps that failed (the
   * caller's own error is the one to report).
   */
  async rollback(): Promise<unknown[]> {
    const failures: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (err) {
        failures.push(err);
      }
    };
    const { references, images } = this.store;
    for (const t of this.record.tags.splice(0).reverse())
      await attempt(() => (t.previous ? references.tag(t.ref, t.previous, { force: true }) : references.untag(t.ref)));
    for (const id of this.record.images.splice(0).reverse()) await attempt(() => images.delete(id));
    for (const w of [...this.open]) await attempt(() => w.abort());
    this.open.clear();
    return failures;
  }

  /**
   * Release the lease. After a failure (`sweep`, once {@link rollback} ran),
   * what the transaction wrote and nothing else references (an image, a
   * layer, another operation's lease) is removed with it, when the store can
   * sweep; otherwise it is garbage for the next GC.
   */
  async end(opts: { sweep?: boolean } = {}): Promise<void> {
    if (opts.sweep && this.store.gc) {
      try {
        await this.store.gc({ sweepLease: this.lease });
        return;
      } catch {
        // the load's own error is the one to report; what is left is garbage for GC
      }
    }
    await this.lease.release();
  }

  private async track<W extends { commit(...args: never[]): Promise<Committed>; abort(): Promise<void> }>(opening: Promise<W>): Promise<W> {
    const w = await opening;
    this.open.add(w);
    const commit = w.commit.bind(w);
    const abort = w.abort.bind(w);
    // The writer itself, its commit and abort noted on the way (its other members untouched).
    return Object.assign(w, {
      commit: async (...args: never[]) => {
        const c = await commit(...args);
        this.open.delete(w);
        this.record.blobs.push(c.digest);
        return c;
      },
      abort: async () => {
        this.open.delete(w);
        await abort();
      },
    });
  }
}

/**
 * Before anything is written: every layer the archive left out
 * ({@link AbsentLayer}) must be in the store already, by the chain its image's
 * config gives it.
 * @throws NotFoundError `ERR_NOT_IN_ARCHIVE` naming the first that is not
 */
export async function checkAbsentLayers(store: ArchiveStore, images: readonly PlannedImage[]): Promise<void> {
  for (const p of images) {
    const chain = chainIds(p.diffIDs);
    for (const [i, f] of p.layers.entries()) if (f.kind === "absent" && !(await store.layers.has(chain[i]!))) throw absentLayer(f, chain[i]!);
  }
}

function absentLayer(f: AbsentLayer, chainID: Digest): NotFoundError {
  return new NotFoundError(`layer ${JSON.stringify(f.name)} (referenced by manifest.json) is neither an entry of the archive nor in the store (no layer ${chainID})`, {
    code: ArchiveErrorCode.NOT_IN_ARCHIVE,
    details: { what: f.name, referencedBy: "manifest.json", chainID },
  });
}

/** How a {@link LoadedLayer} reports a stored layer's blob. */
function storedBlob(d: { digest: Digest; size: number; mediaType: string }): LoadedLayer["blob"] {
  const compression = d.mediaType.endsWith("gzip") ? "gzip" : d.mediaType.endsWith("zstd") ? "zstd" : "none";
  return { digest: d.digest, size: d.size, compression };
}

/**
 * Decide each tag against the store before anything is written: a tag that
 * names another image already is kept (`"keep"`), moved (`"move"`), or
 * refuses the load (`"error"`, `ERR_TAG_CONFLICT`).
 */
export async function decideTags(
  references: Pick<ArchiveReferences, "resolve">,
  tags: ReadonlyMap<string, Digest>,
  policy: "keep" | "move" | "error",
): Promise<{ steps: TagStep[]; conflicts: TagConflict[] }> {
  const steps: TagStep[] = [];
  const conflicts: TagConflict[] = [];
  for (const [ref, id] of tags) {
    const existing = await currentTarget(references, ref);
    if (existing === undefined || existing === id) {
      steps.push({ ref, id, force: false });
      continue;
    }
    if (policy === "error")
      throw new FailedPreconditionError(`tag ${ref} already names image ${existing}, the archive has it on ${id}`, {
        code: ArchiveErrorCode.TAG_CONFLICT,
        details: { ref, existing, wanted: id },
      });
    conflicts.push({ ref, existing, wanted: id, action: policy === "move" ? "moved" : "kept" });
    if (policy === "move") steps.push({ ref, id, force: true });
  }
  return { steps, conflicts };
}

/**
 * Write a plan through `tx`: each image's layers in chain order (a layer
 * shared by several images once), the images, their parents (when the parent
 * is in the store), then the tags. Throws on the first failure, leaving the
 * undo to `tx.rollback()`.
 */
export async function commitPlan(tx: LoadTransaction, plan: { images: PlannedImage[]; tags: TagStep[]; maxLayer: number }): Promise<LoadedImage[]> {
  const { store } = tx;
  const layers = new Map<Digest, LoadedLayer>();
  const images: LoadedImage[] = [];
  for (const p of plan.images) {
    const chain = chainIds(p.diffIDs);
    const loaded: LoadedLayer[] = [];
    for (const [i, f] of p.layers.entries()) {
      const chainID = chain[i]!;
      let r = layers.get(chainID);
      if (!r) {
        r = await tx.layer(f, { chainID, parent: i === 0 ? null : chain[i - 1]!, diffID: p.diffIDs[i]!, maxLayer: plan.maxLayer });
        layers.set(chainID, r);
      }
      loaded.push(r);
    }
    images.push({
      id: p.id,
      manifestDigest: p.id, // set below, once the image exists
      ...(p.archiveManifestDigest ? { archiveManifestDigest: p.archiveManifestDigest } : {}),
      tags: [],
      layers: loaded,
      existed: await imageExists(store, p.id),
    });
  }
  await tx.createImages(
    plan.images.map((p) => p.configBytes),
    new Set(images.filter((im) => im.existed).map((im) => im.id)),
  );
  for (const im of images) im.manifestDigest = (await store.images.get(im.id)).manifestDigest;
  for (const p of plan.images) if (p.parent && (await imageExists(store, p.parent))) await store.images.setParent(p.id, p.parent);
  const refs = await tx.tag(plan.tags);
  const byId = new Map(images.map((im) => [im.id, im]));
  for (const [i, t] of plan.tags.entries()) byId.get(t.id)!.tags.push(refs[i]!);
  for (const im of images) im.tags.sort();
  return images;
}

async function imageExists(store: ArchiveStore, id: string): Promise<boolean> {
  try {
    await store.images.get(id);
    return true;
  } catch (err) {
    if (hasCode(err, "ERR_IMAGE_NOT_FOUND") || hasCode(err, "ERR_NOT_FOUND")) return false;
    throw err;
  }
}

async function currentTarget(references: Pick<ArchiveReferences, "resolve">, ref: string): Promise<Digest | undefined> {
  try {
    return await references.resolve(ref);
  } catch (err) {
    if (err instanceof Error && "code" in err && String((err as { code: string }).code).includes("NOT_FOUND")) return undefined;
    throw err;
  }
}
