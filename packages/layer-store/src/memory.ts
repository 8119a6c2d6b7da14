import { Readable } from "node:stream";
import {
  type ByteSource,
  chainId,
  type Digest,
  FailedPreconditionError,
  InvalidArgumentError,
  layerDigests,
  NotFoundError,
  type Sha256Hash,
  sha256,
} from "@berth/digest";
import { checkFacts, copyLayer, ingestAndRecord, layerFromFacts } from "./layer-common.js";
import { checkIngestOptions, ingestLayerBlob } from "./ingest.js";
import { claimSource } from "./source.js";
import { TarCheck } from "./tarcheck.js";
import { blobNotFound, checkSize, verifyExpected } from "./content-common.js";
import { holderFileName } from "./holders.js";
import { checkDigest } from "./paths.js";
import type {
  BlobInfo,
  BlobWriter,
  CommitResult,
  ContentReader,
  ContentStore,
  FsckOptions,
  FsckProblem,
  FsckReport,
  GcOptions,
  GcResult,
  IngestLayerOptions,
  Layer,
  LayerBlobFacts,
  LayerStore,
  Lease,
  RecordLayerOptions,
  RegisterOptions,
  WriterOptions,
} from "./types.js";
import { judgeProblems, resolveRoots } from "./types.js";
import { uncompressed } from "./uncompress.js";
import { LayerStoreErrorCode, layerNotFound } from "./errors.js";

interface MemLease {
  id: string;
  expiresAt?: number;
  blobs: Set<Digest>;
  layers: Set<Digest>;
}

/** True when the lease's time is up (memory leases have no owner process to die). */
function expired(m: MemLease): boolean {
  return m.expiresAt !== undefined && Date.now() >= m.expiresAt;
}

class MemoryState {
  blobs = new Map<Digest, Uint8Array>();
  layers = new Map<Digest, Layer>();
  holders = new Map<Digest, Set<string>>();
  leases = new Map<string, MemLease>();
  nextLease = 1;

  lease(l: Lease): MemLease {
    const m = this.leases.get(l?.id);
    if (!m || expired(m)) {
      throw new FailedPreconditionError(`lease ${String(l?.id)} is released or expired`, { code: LayerStoreErrorCode.LEASE_NOT_FOUND });
    }
    return m;
  }

  /** Store a verified blob; returns whether it existed. */
  commit(bytes: Uint8Array, digest: Digest, lease: Lease | undefined): boolean {
    if (lease) this.lease(lease).blobs.add(digest);
    if (this.blobs.has(digest)) return true;
    this.blobs.set(digest, bytes);
    return false;
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

class MemoryWriter implements BlobWriter {
  readonly #state: MemoryState;
  readonly #lease: Lease | undefined;
  readonly #hash: Sha256Hash = sha256.create();
  #chunks: Uint8Array[] = [];
  #written = 0;
  #done = false;

  constructor(state: MemoryState, lease: Lease | undefined) {
    this.#state = state;
    this.#lease = lease;
  }
  get written(): number {
    return this.#written;
  }
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#done) throw new FailedPreconditionError("blob writer is already committed or aborted", { code: LayerStoreErrorCode.INGEST_CLOSED });
    if (!(chunk instanceof Uint8Array)) throw new InvalidArgumentError("write expects a Uint8Array chunk");
    this.#hash.update(chunk);
    this.#chunks.push(chunk.slice());
    this.#written += chunk.length;
  }
  async commit(expectedSize?: number, expectedDigest?: Digest | string): Promise<CommitResult> {
    if (this.#done) throw new FailedPreconditionError("blob writer is already committed or aborted", { code: LayerStoreErrorCode.INGEST_CLOSED });
    this.#done = true;
    try {
      const expD = expectedDigest === undefined ? undefined : checkDigest(expectedDigest, "expected digest");
      const expS = expectedSize === undefined ? undefined : checkSize(expectedSize);
      const digest = this.#hash.digest();
      verifyExpected("blob", { digest, size: this.#written }, expS, expD);
      const existed = this.#state.commit(concat(this.#chunks, this.#written), digest, this.#lease);
      return { digest, size: this.#written, existed };
    } finally {
      this.#hash.destroy();
      this.#chunks = [];
    }
  }
  async abort(): Promise<void> {
    if (!this.#done) this.#hash.destroy();
    this.#done = true;
    this.#chunks = [];
  }
}

class MemoryContentStore implements ContentStore {
  readonly #state: MemoryState;
  constructor(state: MemoryState) {
    this.#state = state;
  }
  #get(digest: Digest | string): Uint8Array {
    const d = checkDigest(digest);
    const b = this.#state.blobs.get(d);
    if (!b) throw blobNotFound(d);
    return b;
  }
  async info(digest: Digest | string): Promise<BlobInfo> {
    const b = this.#get(digest);
    return { digest: digest as Digest, size: b.length };
  }
  async has(digest: Digest | string): Promise<boolean> {
    return this.#state.blobs.has(checkDigest(digest));
  }
  async open(digest: Digest | string): Promise<Readable> {
    const b = this.#get(digest);
    return Readable.from([Buffer.from(b)], { objectMode: false });
  }
  async openReader(digest: Digest | string): Promise<ContentReader> {
    const b = this.#get(digest);
    return {
      digest: digest as Digest,
      size: b.length,
      read: async (into, position) => {
        const n = Math.max(0, Math.min(into.byteLength, b.length - position));
        into.set(b.subarray(position, position + n));
        return n;
      },
      close: async () => {},
    };
  }
  async readBytes(digest: Digest | string, maxSize: number): Promise<Uint8Array> {
    checkSize(maxSize, "maxSize");
    const b = this.#get(digest);
    if (b.length > maxSize) {
      throw new FailedPreconditionError(`blob ${digest} is ${b.length} bytes, more than the limit of ${maxSize}`, {
        code: LayerStoreErrorCode.BLOB_TOO_LARGE,
      });
    }
    return b.slice();
  }
  async *list(): AsyncIterable<BlobInfo> {
    for (const d of [...this.#state.blobs.keys()].sort()) {
      const b = this.#state.blobs.get(d);
      if (b) yield { digest: d, size: b.length };
    }
  }
  async writer(opts: WriterOptions = {}): Promise<BlobWriter> {
    if (opts.lease) this.#state.lease(opts.lease);
    return new MemoryWriter(this.#state, opts.lease);
  }
  async put(bytes: Uint8Array, expected: { digest?: Digest | string; size?: number } = {}, opts: WriterOptions = {}): Promise<CommitResult> {
    const w = await this.writer(opts);
    await w.write(bytes);
    return w.commit(expected.size, expected.digest);
  }
  async hold(digest: Digest | string, opts: WriterOptions = {}): Promise<BlobInfo | undefined> {
    const d = checkDigest(digest);
    const b = this.#state.blobs.get(d);
    if (!b) return undefined;
    if (opts.lease) this.#state.lease(opts.lease).blobs.add(d);
    return { digest: d, size: b.length };
  }
}

class MemoryLayerStore implements LayerStore {
  readonly #state = new MemoryState();
  readonly content: ContentStore = new MemoryContentStore(this.#state);

  async register(source: ByteSource, parent?: Digest | string | null, opts: RegisterOptions = {}): Promise<Layer & { existed: boolean }> {
    const parentID = parent === undefined || parent === null ? null : checkDigest(parent, "parent");
    checkIngestOptions(opts);
    if (opts.holder !== undefined) holderFileName(opts.holder);
    if (opts.lease) this.#state.lease(opts.lease);
    const input = claimSource(source);
    try {
      if (parentID && !this.#state.layers.has(parentID)) throw layerNotFound(parentID, "parent layer");
      return await ingestAndRecord(this, input, parentID, opts);
    } finally {
      input.release();
    }
  }

  async ingestLayer(source: ByteSource, opts: IngestLayerOptions = {}): Promise<LayerBlobFacts> {
    if (opts.lease) this.#state.lease(opts.lease);
    return ingestLayerBlob(this.content, source, opts);
  }

  async recordLayer(facts: LayerBlobFacts, parent?: Digest | string | null, opts: RecordLayerOptions = {}): Promise<Layer & { existed: boolean }> {
    const parentID = parent === undefined || parent === null ? null : checkDigest(parent, "parent");
    const f = checkFacts(facts);
    if (opts.holder !== undefined) holderFileName(opts.holder);
    if (opts.lease) this.#state.lease(opts.lease);
    if (parentID && !this.#state.layers.has(parentID)) throw layerNotFound(parentID, "parent layer");
    verifyExpected("layer blob", await this.content.info(f.blob.digest), f.blob.size, f.blob.digest);
    const chainID = parentID === null ? f.diffID : chainId([parentID, f.diffID])!;
    let layer = this.#state.layers.get(chainID);
    let existed = true;
    if (!layer || !this.#state.blobs.has(layer.blob.digest)) {
      layer = layerFromFacts(chainID, parentID, f);
      this.#state.layers.set(chainID, layer);
      existed = false;
    }
    if (opts.lease) this.#state.lease(opts.lease).layers.add(chainID);
    if (opts.holder !== undefined) this.#hold(chainID).add(opts.holder);
    return { ...copyLayer(layer), existed };
  }

  #hold(id: Digest): Set<string> {
    let s = this.#state.holders.get(id);
    if (!s) this.#state.holders.set(id, (s = new Set()));
    return s;
  }

  async get(chainID: Digest | string): Promise<Layer> {
    const id = checkDigest(chainID, "ChainID");
    const l = this.#state.layers.get(id);
    if (!l) throw layerNotFound(id);
    return copyLayer(l);
  }
  async has(chainID: Digest | string): Promise<boolean> {
    return this.#state.layers.has(checkDigest(chainID, "ChainID"));
  }
  async list(): Promise<Layer[]> {
    return [...this.#state.layers.keys()].sort().map((k) => copyLayer(this.#state.layers.get(k)!));
  }
  async acquire(chainID: Digest | string, holder: string): Promise<Layer> {
    const id = checkDigest(chainID, "ChainID");
    holderFileName(holder);
    const l = await this.get(id);
    this.#hold(id).add(holder);
    return l;
  }
  async leaseLayer(chainID: Digest | string, lease: Lease): Promise<boolean> {
    const id = checkDigest(chainID, "ChainID");
    const m = this.#state.lease(lease);
    if (!this.#state.layers.has(id)) return false;
    m.layers.add(id);
    return true;
  }
  async release(chainID: Digest | string, holder: string): Promise<void> {
    const id = checkDigest(chainID, "ChainID");
    holderFileName(holder);
    const s = this.#state.holders.get(id);
    if (!s?.delete(holder)) {
      if (!this.#state.layers.has(id)) throw layerNotFound(id);
      throw new NotFoundError(`layer ${id} is not held by ${JSON.stringify(holder)}`, {
        code: LayerStoreErrorCode.LAYER_NOT_RETAINED,
        details: { chainID: id, holder },
      });
    }
    if (s.size === 0) this.#state.holders.delete(id);
  }
  async holders(chainID: Digest | string): Promise<string[]> {
    return [...(this.#state.holders.get(checkDigest(chainID, "ChainID")) ?? [])].sort();
  }
  async open(chainID: Digest | string): Promise<Readable> {
    return this.content.open((await this.get(chainID)).blob.digest);
  }
  async openUncompressed(chainID: Digest | string): Promise<Readable> {
    return uncompressed(await this.open(chainID));
  }
  async hasGarbage(): Promise<boolean> {
    for (const m of this.#state.leases.values()) if (expired(m)) return true;
    return false;
  }
  async leased(): Promise<{ blobs: Set<Digest>; layers: Set<Digest> }> {
    const out = { blobs: new Set<Digest>(), layers: new Set<Digest>() };
    for (const m of this.#state.leases.values()) {
      if (expired(m)) continue;
      for (const d of m.blobs) out.blobs.add(d);
      for (const c of m.layers) out.layers.add(c);
    }
    return out;
  }

  async lease(opts: { expiresInMs?: number } = {}): Promise<Lease> {
    if (opts.expiresInMs !== undefined && !(opts.expiresInMs > 0)) {
      throw new InvalidArgumentError(`lease expiresInMs must be positive, got ${opts.expiresInMs}`);
    }
    const id = `mem-${this.#state.nextLease++}`;
    const m: MemLease = { id, blobs: new Set(), layers: new Set() };
    if (opts.expiresInMs !== undefined) m.expiresAt = Date.now() + opts.expiresInMs;
    this.#state.leases.set(id, m);
    const leases = this.#state.leases;
    return {
      id,
      async release() {
        leases.delete(id);
      },
    };
  }
  async gc(opts: GcOptions = {}): Promise<GcResult> {
    const st = this.#state;
    const givenBlobs = resolveRoots([opts.keepBlobs, "keepBlobs entry"]);
    const givenLayers = resolveRoots([opts.keepLayers, "keepLayers entry"]);
    const extra = opts.roots ? await opts.roots() : {};
    const markedBlobs = resolveRoots([givenBlobs, ""], [extra.blobs, "roots().blobs entry"]);
    const roots = resolveRoots([givenLayers, ""], [extra.layers, "roots().layers entry"]);
    for (const [id, hs] of st.holders) if (hs.size) roots.add(id);
    // A failed operation's lease: what it protects are the only candidates, and it protects nothing now.
    const swept = opts.sweepLease ? st.leases.get(opts.sweepLease.id) : undefined;
    const only = opts.sweepLease ? { blobs: new Set(swept?.blobs), layers: new Set(swept?.layers) } : undefined;
    if (opts.sweepLease) st.leases.delete(opts.sweepLease.id);
    for (const [id, l] of st.leases) {
      if (expired(l)) {
        st.leases.delete(id);
        continue;
      }
      for (const d of l.blobs) markedBlobs.add(d);
      for (const d of l.layers) roots.add(d);
    }
    const marked = new Set<Digest>();
    for (const r of roots) {
      let cur: Digest | null = r;
      while (cur !== null && !marked.has(cur)) {
        marked.add(cur);
        cur = st.layers.get(cur)?.parent ?? null;
      }
    }
    const removedLayers: Digest[] = [];
    for (const [id, l] of st.layers) {
      if (marked.has(id) || (only && !only.layers.has(id))) markedBlobs.add(l.blob.digest);
      else {
        removedLayers.push(id);
        only?.blobs.add(l.blob.digest);
      }
    }
    for (const id of removedLayers) {
      st.layers.delete(id);
      st.holders.delete(id);
    }
    const removedBlobs: Digest[] = [];
    let freedBytes = 0;
    for (const [d, b] of st.blobs) {
      if (markedBlobs.has(d) || (only && !only.blobs.has(d))) continue;
      st.blobs.delete(d);
      removedBlobs.push(d);
      freedBytes += b.length;
    }
    return { removedLayers: removedLayers.sort(), removedBlobs: removedBlobs.sort(), freedBytes };
  }
  async fsck(opts: FsckOptions = {}): Promise<FsckReport> {
    const st = this.#state;
    const repair = opts.repair === true;
    const problems: FsckProblem[] = [];
    for (const [d, b] of st.blobs) {
      if (sha256(b) === d) continue;
      problems.push({ kind: "blob-corrupt", path: `memory:blobs/${d}`, digest: d, message: `blob ${d} does not match its digest`, garbage: false, repaired: repair });
      if (repair) st.blobs.delete(d);
    }
    const broken = new Set<Digest>();
    for (const [id, l] of st.layers) {
      const b = st.blobs.get(l.blob.digest);
      let why: string | undefined;
      let kind: FsckProblem["kind"] = "record-blob-missing";
      if (!b) why = `blob ${l.blob.digest} is missing`;
      else if (b.length !== l.blob.size) [kind, why] = ["record-blob-mismatch", `blob is ${b.length} bytes, record says ${l.blob.size}`];
      else if (opts.verifyContent !== false) {
        const tar = new TarCheck();
        const r = await layerDigests([b], { onUncompressed: (c) => tar.push(c) }).catch(() => undefined);
        const notTar = r && tar.finish();
        if (r?.diffID !== l.diffID || r.uncompressedSize !== l.size || (l.contentSize !== undefined && !notTar && tar.contentSize !== l.contentSize))
          [kind, why] = ["record-diffid-mismatch", "blob does not decompress to the DiffID and sizes of the record"];
        else if (notTar) [kind, why] = ["record-not-tar", notTar.message];
      }
      if (why) {
        problems.push({ kind, path: `memory:layers/${id}`, digest: id, message: `layer ${id}: ${why}`, garbage: false, repaired: repair });
        broken.add(id);
      }
    }
    for (let changed = true; changed; ) {
      changed = false;
      for (const [id, l] of st.layers) {
        if (broken.has(id) || l.parent === null || (st.layers.has(l.parent) && !broken.has(l.parent))) continue;
        problems.push({ kind: "record-parent-missing", path: `memory:layers/${id}`, digest: id, message: `layer ${id}: parent ${l.parent} is missing or broken`, garbage: false, repaired: repair });
        broken.add(id);
        changed = true;
      }
    }
    if (repair) for (const id of broken) st.layers.delete(id);
    for (const [id, lease] of [...st.leases]) {
      if (!expired(lease)) continue;
      problems.push({ kind: "lease-dead", path: `memory:leases/${id}`, message: `lease ${id} has expired`, garbage: true, repaired: repair });
      if (repair) st.leases.delete(id);
    }
    if (opts.keepBlobs !== undefined || opts.roots) {
      const live = resolveRoots([opts.keepBlobs, "keepBlobs entry"], [opts.roots ? (await opts.roots()).blobs : undefined, "roots().blobs entry"]);
      for (const l of st.layers.values()) live.add(l.blob.digest);
      for (const lease of st.leases.values()) if (!expired(lease)) for (const d of lease.blobs) live.add(d);
      for (const d of [...st.blobs.keys()]) {
        if (live.has(d)) continue;
        const bytes = st.blobs.get(d)!.length;
        problems.push({ kind: "blob-orphan", path: `memory:blobs/${d}`, digest: d, message: `blob ${d} is referenced by nothing`, garbage: true, bytes, repaired: repair });
        if (repair) st.blobs.delete(d);
      }
    }
    return { ...judgeProblems(problems), problems, checkedBlobs: st.blobs.size, checkedLayers: st.layers.size + (repair ? broken.size : 0) };
  }

  async close(): Promise<void> {}
}

/**
 * An in-memory {@link LayerStore} (with its {@link ContentStore}) with the same
 * semantics as the filesystem store, for tests of other packages and for
 * runtimes without a filesystem. Leases expire only by time or release.
 */
export function createMemoryLayerStore(): LayerStore {
  return new MemoryLayerStore();
}
