import { promises as fsp, statSync } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import {
  type ByteSource,
  chainId,
  DataIntegrityError,
  type Digest,
  digestFromHex,
  InvalidArgumentError,
  NotFoundError,
} from "@berth/digest";
import { checkSize, FsContentStore, STORE_LOCK, verifyExpected } from "./content.js";
import { fsyncDir, mkdirp, readdirIfExists, readIfExists, writeFileAtomic } from "./fsutil.js";
import { FsLeases } from "./leases.js";
import { withLock } from "./lock.js";
import { checkDigest, isHex64, StorePaths } from "./paths.js";
import {
  type FsckOptions,
  type FsckReport,
  type GcOptions,
  type GcResult,
  type IngestLayerOptions,
  type Layer,
  type LayerBlobFacts,
  type LayerStore,
  type Lease,
  type RecordLayerOptions,
  type RegisterOptions,
  resolveRoots,
} from "./types.js";
import { uncompressed } from "./uncompress.js";
import { holderFileName, holderFromFileName } from "./holders.js";
import { cleanupStale } from "./cleanup.js";
import { type BlobCheckCache, fsckLayers } from "./fsck.js";
import { checkFacts, copyLayer, ingestAndRecord, layerFromFacts } from "./layer-common.js";
import { checkIngestOptions, ingestLayerBlob } from "./ingest.js";
import { openOffThreadWriter } from "./offthread.js";
import { claimSource } from "./source.js";
import { LayerStoreErrorCode, layerNotFound } from "./errors.js";

/** What `layers/sha256/<chainID-hex>.json` holds. */
interface LayerRecordFile {
  schemaVersion: 1;
  chainID: string;
  diffID: string;
  parent: string | null;
  size: number;
  contentSize?: number;
  blob: { mediaType: string; digest: string; size: number };
  created?: string;
}

/** Parse and validate a layer record; throws DataIntegrityError `ERR_LAYER_RECORD_CORRUPT`. */
export function parseLayerRecord(buf: Uint8Array, file: string, expectedChainID?: Digest): Layer {
  const bad = (why: string, cause?: unknown) =>
    new DataIntegrityError(`layer record ${file}: ${why}`, { code: LayerStoreErrorCode.LAYER_RECORD_CORRUPT, cause, details: { path: file } });
  let j: LayerRecordFile;
  try {
    j = JSON.parse(Buffer.from(buf).toString("utf8")) as LayerRecordFile;
  } catch (err) {
    throw bad("not valid JSON", err);
  }
  try {
    if (j === null || typeof j !== "object") throw new Error("not an object");
    const chainID = checkDigest(j.chainID);
    const diffID = checkDigest(j.diffID);
    const parent = j.parent === null ? null : checkDigest(j.parent);
    const size = checkSize(j.size, "size");
    const contentSize = j.contentSize === undefined ? undefined : checkSize(j.contentSize, "contentSize");
    if (!j.blob || typeof j.blob.mediaType !== "string") throw new Error("blob descriptor missing");
    const blob = { mediaType: j.blob.mediaType, digest: checkDigest(j.blob.digest), size: checkSize(j.blob.size, "blob size") };
    if (expectedChainID !== undefined && chainID !== expectedChainID) throw new Error(`names ChainID ${chainID}`);
    const computed = parent === null ? diffID : chainId([parent, diffID]);
    if (computed !== chainID) throw new Error(`ChainID ${chainID} does not match parent and DiffID (${computed})`);
    return { chainID, diffID, parent, size, ...(contentSize === undefined ? {} : { contentSize }), blob };
  } catch (err) {
    throw bad((err as Error).message, err);
  }
}

/** Options of {@link openLayerStore}. */
export interface OpenLayerStoreOptions {
  /** The store root directory (created when missing). */
  root: string;
}

/**
 * Filesystem layer store. See the package README for the on-disk layout and
 * the crash-safety argument.
 */
export class FsLayerStore implements LayerStore {
  readonly root: string;
  readonly content: FsContentStore;
  readonly #paths: StorePaths;
  readonly #leases: FsLeases;

  /** @internal use {@link openLayerStore} */
  constructor(paths: StorePaths) {
    this.#paths = paths;
    this.root = paths.root;
    this.#leases = new FsLeases(paths);
    this.content = new FsContentStore(paths, this.#leases);
  }

  /** @internal */
  get paths(): StorePaths {
    return this.#paths;
  }

  /** @internal */
  get leases(): FsLeases {
    return this.#leases;
  }

  async #readRecord(chainID: Digest): Promise<Layer | undefined> {
    const file = this.#paths.layerRecord(chainID);
    const buf = await readIfExists(file);
    return buf === undefined ? undefined : parseLayerRecord(buf, file, chainID);
  }

  async register(
    source: ByteSource,
    parent?: Digest | string | null,
    opts: RegisterOptions = {},
  ): Promise<Layer & { existed: boolean }> {
    // Validate everything before reading a byte.
    const parentID = parent === undefined || parent === null ? null : checkDigest(parent, "parent");
    checkIngestOptions(opts);
    if (opts.holder !== undefined) holderFileName(opts.holder);
    // read from now on: nothing of the stream is lost while the checks run
    const input = claimSource(source);
    try {
      if (opts.lease) await this.#leases.check(opts.lease);
      if (parentID && !(await this.has(parentID))) throw layerNotFound(parentID, "parent layer");
      return await ingestAndRecord(this, input, parentID, opts);
    } finally {
      input.release();
    }
  }

  async ingestLayer(source: ByteSource, opts: IngestLayerOptions = {}): Promise<LayerBlobFacts> {
    const input = claimSource(source);
    try {
      if (opts.lease) await this.#leases.check(opts.lease);
    } catch (err) {
      input.release();
      throw err;
    }
    return ingestLayerBlob(this.content, input, opts, openOffThreadWriter);
  }

  async recordLayer(facts: LayerBlobFacts, parent?: Digest | string | null, opts: RecordLayerOptions = {}): Promise<Layer & { existed: boolean }> {
    const parentID = parent === undefined || parent === null ? null : checkDigest(parent, "parent");
    const f = checkFacts(facts);
    const holderFile = opts.holder === undefined ? undefined : holderFileName(opts.holder);
    if (opts.lease) await this.#leases.check(opts.lease);
    const chainID = parentID === null ? f.diffID : chainId([parentID, f.diffID])!;
    return withLock(this.#paths.root, STORE_LOCK, async () => {
      if (parentID && !(await this.#readRecord(parentID))) throw layerNotFound(parentID, "parent layer");
      verifyExpected("layer blob", await this.content.info(f.blob.digest), f.blob.size, f.blob.digest);
      let layer = await this.#readRecord(chainID);
      let existed = true;
      if (!layer || !(await this.content.has(layer.blob.digest))) {
        // New layer (or a record whose blob was lost: point it at this verified blob).
        layer = layerFromFacts(chainID, parentID, f);
        existed = false;
        await this.#writeRecord(layer);
      }
      if (opts.lease) await this.#leases.addLayer(opts.lease, chainID);
      if (holderFile) await this.#addHolder(chainID, holderFile);
      return { ...copyLayer(layer), existed };
    });
  }

  async #writeRecord(layer: Layer): Promise<void> {
    await mkdirp(this.#paths.layerRecords);
    const rec: LayerRecordFile = {
      schemaVersion: 1,
      chainID: layer.chainID,
      diffID: layer.diffID,
      parent: layer.parent,
      size: layer.size,
      ...(layer.contentSize === undefined ? {} : { contentSize: layer.contentSize }),
      blob: { mediaType: layer.blob.mediaType, digest: layer.blob.digest, size: layer.blob.size },
      created: new Date().toISOString(),
    };
    await writeFileAtomic(this.#paths.layerRecord(layer.chainID), `${JSON.stringify(rec, null, 2)}\n`);
  }

  async #addHolder(chainID: Digest, holderFile: string): Promise<void> {
    const dir = this.#paths.layerRefDir(chainID);
    await mkdirp(dir);
    const file = path.join(dir, holderFile);
    const fh = await fsp.open(file, "w");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsyncDir(dir);
  }

  async get(chainID: Digest | string): Promise<Layer> {
    const id = checkDigest(chainID, "ChainID");
    const layer = await this.#readRecord(id);
    if (!layer) throw layerNotFound(id);
    return layer;
  }

  async has(chainID: Digest | string): Promise<boolean> {
    const id = checkDigest(chainID, "ChainID");
    // one stat, on the calling thread: listing 10,000 images asks this 10,000 times
    return statSync(this.#paths.layerRecord(id), { throwIfNoEntry: false })?.isFile() === true;
  }

  async list(): Promise<Layer[]> {
    const out: Layer[] = [];
    for (const name of (await readdirIfExists(this.#paths.layerRecords)).sort()) {
      const m = /^([a-f0-9]{64})\.json$/.exec(name);
      if (!m) continue;
      const layer = await this.#readRecord(digestFromHex(m[1]!));
      if (layer) out.push(layer);
    }
    return out;
  }

  async acquire(chainID: Digest | string, holder: string): Promise<Layer> {
    const id = checkDigest(chainID, "ChainID");
    const file = holderFileName(holder);
    return withLock(this.#paths.root, STORE_LOCK, async () => {
      const layer = await this.#readRecord(id);
      if (!layer) throw layerNotFound(id);
      await this.#addHolder(id, file);
      return layer;
    });
  }

  async leaseLayer(chainID: Digest | string, lease: Lease): Promise<boolean> {
    const id = checkDigest(chainID, "ChainID");
    await this.#leases.check(lease);
    return withLock(this.#paths.root, STORE_LOCK, async () => {
      if (!(await this.#readRecord(id))) return false;
      await this.#leases.addLayer(lease, id);
      return true;
    });
  }

  async release(chainID: Digest | string, holder: string): Promise<void> {
    const id = checkDigest(chainID, "ChainID");
    const file = holderFileName(holder);
    await withLock(this.#paths.root, STORE_LOCK, async () => {
      const dir = this.#paths.layerRefDir(id);
      try {
        await fsp.unlink(path.join(dir, file));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        if (!(await this.has(id))) throw layerNotFound(id);
        throw new NotFoundError(`layer ${id} is not held by ${JSON.stringify(holder)}`, {
          code: LayerStoreErrorCode.LAYER_NOT_RETAINED,
          details: { chainID: id, holder },
        });
      }
      await fsp.rmdir(dir).catch(() => {});
      await fsyncDir(path.dirname(dir)).catch(() => {});
    });
  }

  async holders(chainID: Digest | string): Promise<string[]> {
    const id = checkDigest(chainID, "ChainID");
    const out: string[] = [];
    for (const name of await readdirIfExists(this.#paths.layerRefDir(id))) {
      const h = holderFromFileName(name);
      if (h !== undefined) out.push(h);
    }
    return out.sort();
  }

  async open(chainID: Digest | string): Promise<Readable> {
    const layer = await this.get(chainID);
    return this.content.open(layer.blob.digest);
  }

  async openUncompressed(chainID: Digest | string): Promise<Readable> {
    return uncompressed(await this.open(chainID));
  }

  lease(opts: { expiresInMs?: number } = {}): Promise<Lease> {
    return this.#leases.create(opts);
  }

  async leased(): Promise<{ blobs: Set<Digest>; layers: Set<Digest> }> {
    const { blobs, layers } = await this.#leases.roots(false);
    return { blobs, layers };
  }

  async hasGarbage(): Promise<boolean> {
    if ((await this.#leases.roots(false)).dead.length > 0) return true;
    return (await cleanupStale(this.#paths, { dryRun: true })).length > 0;
  }

  /** Chains with at least one holder, by ChainID. */
  async #heldLayers(): Promise<Set<Digest>> {
    const held = new Set<Digest>();
    for (const name of await readdirIfExists(this.#paths.layerRefs)) {
      if (!isHex64(name)) continue;
      const entries = await readdirIfExists(path.join(this.#paths.layerRefs, name));
      if (entries.some((e) => holderFromFileName(e) !== undefined)) held.add(digestFromHex(name));
    }
    return held;
  }

  async gc(opts: GcOptions = {}): Promise<GcResult> {
    // Given roots are validated before anything happens; opts.roots runs under the lock, after the leases are read.
    const givenBlobs = resolveRoots([opts.keepBlobs, "keepBlobs entry"]);
    const givenLayers = resolveRoots([opts.keepLayers, "keepLayers entry"]);
    const ingestMaxAgeMs = opts.ingestMaxAgeMs ?? 24 * 3600_000;
    return withLock(this.#paths.root, STORE_LOCK, async () => {
      // Mark.
      const records = new Map<Digest, Layer>();
      const corrupt = new Set<Digest>();
      for (const name of await readdirIfExists(this.#paths.layerRecords)) {
        const m = /^([a-f0-9]{64})\.json$/.exec(name);
        if (!m) continue;
        const id = digestFromHex(m[1]!);
        try {
          const l = await this.#readRecord(id);
          if (l) records.set(id, l);
        } catch {
          corrupt.add(id); // fsck reports and repairs these; GC leaves the record alone
        }
      }
      // A failed operation's lease: what it protects are the only candidates, and it protects nothing now.
      const only = opts.sweepLease ? await this.#leases.resources(opts.sweepLease) : undefined;
      if (opts.sweepLease) await this.#leases.release(opts.sweepLease.id);
      const leaseRoots = await this.#leases.roots(false);
      const extra = opts.roots ? await opts.roots() : {};
      const keepBlobs = resolveRoots([givenBlobs, ""], [extra.blobs, "roots().blobs entry"]);
      const keepLayers = resolveRoots([givenLayers, ""], [extra.layers, "roots().layers entry"]);
      for (const id of leaseRoots.dead) await this.#leases.release(id);
      const roots = new Set<Digest>([...(await this.#heldLayers()), ...keepLayers, ...leaseRoots.layers]);
      const markedLayers = new Set<Digest>();
      for (const root of roots) {
        let cur: Digest | null = root;
        while (cur !== null && !markedLayers.has(cur)) {
          markedLayers.add(cur);
          cur = records.get(cur)?.parent ?? null;
        }
      }
      const markedBlobs = new Set<Digest>([...keepBlobs, ...leaseRoots.blobs]);
      for (const id of markedLayers) {
        const l = records.get(id);
        if (l) markedBlobs.add(l.blob.digest);
      }
      // Sweep layers: deepest first, so a crash never leaves a child without its parent.
      const depth = (id: Digest): number => {
        let n = 0;
        let cur = records.get(id)?.parent ?? null;
        while (cur !== null && n < 100_000) {
          n++;
          cur = records.get(cur)?.parent ?? null;
        }
        return n;
      };
      const doomed = [...records.keys()].filter((id) => !markedLayers.has(id) && (!only || only.layers.has(id)));
      for (const id of doomed) only?.blobs.add(records.get(id)!.blob.digest);
      doomed.sort((a, b) => depth(b) - depth(a) || (a < b ? -1 : 1));
      const removedLayers: Digest[] = [];
      for (const id of doomed) {
        // Holder directory first: a crash in between leaves an unheld record, never holders of nothing.
        await fsp.rm(this.#paths.layerRefDir(id), { recursive: true, force: true });
        await fsp.rm(this.#paths.layerRecord(id), { force: true });
        removedLayers.push(id);
      }
      if (removedLayers.length) await fsyncDir(this.#paths.layerRecords);
      // Sweep blobs (after the records that pointed at them are gone for good).
      const removedBlobs: Digest[] = [];
      let freedBytes = 0;
      const candidates = only ? [...only.blobs] : (await readdirIfExists(this.#paths.blobs)).filter(isHex64).map((h) => digestFromHex(h));
      for (const d of candidates) {
        if (markedBlobs.has(d)) continue;
        const file = this.#paths.blob(d);
        const st = await fsp.stat(file).catch(() => undefined);
        if (!st) continue;
        await fsp.rm(file, { force: true });
        removedBlobs.push(d);
        freedBytes += st.size;
      }
      if (removedBlobs.length) await fsyncDir(this.#paths.blobs);
      await cleanupStale(this.#paths, { ingestMaxAgeMs });
      return { removedLayers, removedBlobs: removedBlobs.sort(), freedBytes };
    });
  }

  /**
   * Verify blobs, layer records, holders, leases and in-flight files; with
   * `repair`, remove garbage and broken records under the store lock (blobs
   * are hashed before the lock is taken, so other processes are not held up
   * by the hashing). See {@link FsckOptions}.
   */
  async fsck(opts: FsckOptions = {}): Promise<FsckReport> {
    const read = (id: Digest) => this.#readRecord(id);
    if (!opts.repair) return fsckLayers(this.#paths, this.#leases, read, opts);
    // Hash everything without the lock first (that may take long); under the
    // lock, the same immutable blob files are not read again.
    const cache: BlobCheckCache = new Map();
    await fsckLayers(this.#paths, this.#leases, read, { ...opts, repair: false }, cache);
    return withLock(this.#paths.root, STORE_LOCK, () => fsckLayers(this.#paths, this.#leases, read, opts, cache));
  }

  async close(): Promise<void> {}
}

/**
 * Open (creating when missing) the layer store at `root`: the directories
 * `blobs/sha256`, `ingest`, `layers`, `leases`, `locks`. Removes ingests and
 * temporary files left by processes that died; layer records, holders and
 * leases are read from disk on every call, so what other processes do is
 * always seen.
 */
export async function openLayerStore(opts: OpenLayerStoreOptions): Promise<FsLayerStore> {
  if (!opts || typeof opts.root !== "string" || opts.root.length === 0) {
    throw new InvalidArgumentError("openLayerStore: root must be a non-empty path", { code: LayerStoreErrorCode.INVALID_ROOT });
  }
  const paths = new StorePaths(opts.root);
  for (const dir of [paths.blobs, paths.ingest, paths.layerRecords, paths.layerRefs, paths.leases, paths.locks]) await mkdirp(dir);
  await cleanupStale(paths, {});
  return new FsLayerStore(paths);
}
