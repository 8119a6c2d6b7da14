/**
 * BuildKit-style cache records over the layer store (after BuildKit's
 * `cache/refs.go` and `cache/manager.go`): one record per layer of a chain,
 * with parent, ChainID, BlobChainID, DiffID, blob, description, times, usage
 * count and retain policy; refs acquired and released; lazily computed sizes;
 * `du()` and `prune()` like `docker builder du` / `docker builder prune`.
 * Mutable records (`new`, `getMutable`) are in `mutable.ts`; what both kinds
 * share on disk (IDs, lock, ref markers, snapshotter) in `cachedir.ts`.
 * @module
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { type Digest, digestHex, FailedPreconditionError, InvalidArgumentError, NotFoundError, sha256 } from "@berth/digest";
import type { Layer, LayerStore } from "@berth/layer-store";
import { CacheDir, checkId } from "./cachedir.js";
import { CacheErrorCode } from "./errors.js";
import { type MutableRecord, MutableRecords, type MutableRef, type NewRefOptions } from "./mutable.js";
import { pruneChainSnapshots, type SnapshotSummary, summarizeSnapshots } from "./snapshot/prune.js";
import type { Snapshotter } from "./snapshot/snapshotter.js";

/** Kinds of records, as BuildKit's `UsageRecordType`. */
export type RecordType = "regular" | "internal" | "frontend" | "source.local" | "source.git.checkout" | "exec.cachemount";

/**
 * What happens to a record when its last ref is released: `"retain"` keeps it
 * until pruned (BuildKit's CachePolicyRetain, the default here: a cache that
 * forgets what it was given is no cache), `"default"` removes it at once.
 */
export type RetainPolicy = "retain" | "default";

/** A stored cache record. Times are ISO strings; `lastUsedAt` is absent until first released. */
export interface CacheRecord {
  /** Record ID: the first 25 hex digits of the BlobChainID. */
  id: string;
  /** ID of the parent record (the layer below), `null` for a base layer. */
  parent: string | null;
  /** ChainID of the layer chain (OCI identity); the layer store key. */
  chainID: Digest;
  /** BlobChainID (BuildKit `SetBlob`): like the ChainID, over `ChainID([blob, diffID])` per layer. */
  blobChainID: Digest;
  diffID: Digest;
  blob: { digest: Digest; mediaType: string };
  description: string;
  recordType: RecordType;
  retain: RetainPolicy;
  createdAt: string;
  lastUsedAt?: string;
  usageCount: number;
  /** Bytes of the blob on disk, once computed (lazily, once). */
  size?: number;
}

/** One entry of {@link CacheManager.du} (BuildKit's `UsageInfo`). */
export interface UsageInfo {
  id: string;
  parents: string[];
  /** ChainID of the record's layer chain; `null` for a mutable record (it has no layer yet). */
  chainID: Digest | null;
  /** BlobChainID; `null` for a mutable record. */
  blobChainID: Digest | null;
  /** A writable record made by {@link CacheManager.new}, not committed yet. */
  mutable: boolean;
  description: string;
  recordType: RecordType;
  retain: RetainPolicy;
  createdAt: Date;
  lastUsedAt?: Date;
  usageCount: number;
  /** Held by a ref now, or the parent of a record that is. */
  inUse: boolean;
  /** The layer (or one above it) is also held outside the cache (an image): pruning frees none of its bytes. */
  shared: boolean;
  /**
   * Bytes this record accounts for: its blob's size, or 0 when another record
   * (earlier in ID order) stores the same blob — a shared blob counts once.
   */
  size: number;
  /** Size of the blob itself, whichever record it is counted on (a mutable record: its snapshot's disk usage). */
  blobSize: number;
}

/** Options of {@link CacheManager.du}. */
export interface DuOptions {
  /** docker/buildkit filters (see {@link PruneOptions.filters}). */
  filters?: readonly string[];
}

/** Options of {@link CacheManager.prune} (`docker builder prune`). */
export interface PruneOptions {
  /** Prune every record type, shared ones included (`--all`). */
  all?: boolean;
  /** Keep records used within this many milliseconds (`--filter until=…`, `keepDuration`). */
  keepDuration?: number;
  /**
   * Keep this many bytes of cache (`--keep-storage`): records are removed one at
   * a time, least recently and least often used first, until the accounted
   * total is at most `keepBytes`. 0 = no limit.
   */
  keepBytes?: number;
  /**
   * Filters, `field==value` (also `=`), `field!=value`, `field~=regexp`, or a
   * bare boolean field; comma-separated terms must all match, any string of
   * the list may. Fields: id, parents, description, type, inuse, mutable,
   * immutable, shared, private. `until=<duration>` is turned into
   * `keepDuration` (as dockerd does); durations like `24h`, `90m`, `10s`.
   */
  filters?: readonly string[];
}

/** Result of {@link CacheManager.prune}. */
export interface PruneResult {
  /** The records removed, with their accounted sizes. */
  removed: UsageInfo[];
  /** Sum of the removed records' accounted sizes (what `docker builder prune` reports). */
  reclaimedBytes: number;
  /** Bytes actually freed on disk: the store's GC afterwards, and the chain snapshots removed. */
  freedBytes: number;
  /** Chain snapshots removed (their ChainIDs): no record holds their chain, nothing is prepared on them. */
  snapshotsRemoved: string[];
}

/**
 * A live reference to a record; the record is in use until `release()`.
 * A record made by a commit is final at once: berth keeps no writable twin of
 * it (BuildKit's `equalMutable`), so there is nothing for a `Finalize` to do.
 */
export interface CacheRef {
  readonly id: string;
  readonly chainID: Digest;
  /** The record as it was when the ref was taken (see {@link info} for now). */
  readonly record: CacheRecord;
  /**
   * Release the ref (idempotent). Updates the record's last-used time and
   * usage count, unless the ref was taken with `noUpdateLastUsed` (only looked
   * at, as `cache du` and exporters do).
   */
  release(): Promise<void>;
  /**
   * A read-only view of the layer chain's filesystem: the directory of its
   * committed snapshot, extracted first when missing. Read-only by contract:
   * children prepare copies of it, so writing into it would change them all.
   */
  mount(): Promise<string>;
  /**
   * BuildKit's `Extract`: make sure the chain's committed snapshot exists
   * (each missing layer extracted on the one below) without asking for a
   * mount. Returns the ChainIDs it extracted, bottom first (empty when all were).
   */
  extract(): Promise<Digest[]>;
  /** Another live ref to the same record, released on its own; it keeps this ref's `noUpdateLastUsed`. */
  clone(): Promise<CacheRef>;
  /** A live ref to the parent record (the layer below; release it too), or `null` for a base layer. */
  parent(): Promise<CacheRef | null>;
  /** The record as stored now (usage count, last use, blob size once computed). */
  info(): Promise<CacheRecord>;
  /**
   * Sizes of the record's own layer: `blob`, its stored (usually compressed)
   * bytes; `unpacked`, the bytes of its files as dockerd counts a layer's size;
   * `tar`, the uncompressed tar.
   */
  size(): Promise<{ blob: number; unpacked: number; tar: number }>;
}

/** Options of taking a ref to an existing record. */
export interface GetRefOptions {
  /** The ref only looks: its release leaves last-used time and usage count alone (BuildKit's `NoUpdateLastUsed`). */
  noUpdateLastUsed?: boolean;
}

/** Options of creating records. */
export interface RecordOptions {
  description?: string;
  recordType?: RecordType;
  retain?: RetainPolicy;
}

/** The store roles the cache manager needs. */
export interface CacheManagerStore {
  /** Store root; records live under `<root>/cache/`. */
  root: string;
  layers: LayerStore;
  /**
   * The store-wide GC that frees the bytes of layers nobody holds. An
   * image-store `Store` has one that knows its configs and manifests; a bare
   * layer store's `gc()` would delete them, so it is used only when the store
   * is just a layer store (`{ root, layers }`).
   */
  gc?(): Promise<{ freedBytes: number }>;
}

/** Options of {@link openCacheManager}. */
export interface CacheManagerOptions {
  /** The clock for created/last-used times and `keepDuration` (default: the system clock). */
  now?: () => Date;
}

const HOLDER_PREFIX = "cache:";

/** BuildKit's BlobChainID of one layer on top of `parentBlobChainID`. */
export function blobChainId(parentBlobChainID: Digest | null, blob: Digest, diffID: Digest): Digest {
  const blobID = sha256(`${blob} ${diffID}`);
  return parentBlobChainID === null ? blobID : sha256(`${parentBlobChainID} ${blobID}`);
}

function recordIdOf(blobChainID: Digest): string {
  return digestHex(blobChainID).slice(0, 25);
}

/** Parse `24h`, `1h30m`, `90s`, `500ms` (Go `time.ParseDuration` units) into milliseconds. */
export function parseDuration(s: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * (unit[m[2] as string] as number);
    pos = re.lastIndex;
  }
  if (s === "" || pos !== s.length) throw new InvalidArgumentError(`invalid duration ${JSON.stringify(s)}`, { code: CacheErrorCode.CACHE_FILTER });
  return total;
}

interface FilterTerm {
  field: string;
  op: "==" | "!=" | "~=" | "present";
  value: string;
}

/** Parse docker/containerd-style filters; `until` terms come back separately. */
export function parseFilters(filters: readonly string[]): { alternatives: FilterTerm[][]; until?: number } {
  const alternatives: FilterTerm[][] = [];
  let until: number | undefined;
  const fields = new Set(["id", "parents", "description", "type", "inuse", "mutable", "immutable", "shared", "private"]);
  for (const f of filters) {
    const terms: FilterTerm[] = [];
    for (const raw of f.split(",")) {
      const t = raw.trim();
      if (t === "") continue;
      const m = /^([a-z.]+)\s*(==|!=|~=|=)\s*(.*)$/.exec(t);
      const field = m ? (m[1] as string) : t;
      if (field === "until") {
        if (!m) throw new InvalidArgumentError(`filter ${JSON.stringify(t)}: until needs a duration`, { code: CacheErrorCode.CACHE_FILTER });
        until = parseDuration(m[3] as string);
        continue;
      }
      if (!fields.has(field)) throw new InvalidArgumentError(`unknown cache filter field ${JSON.stringify(field)}`, { code: CacheErrorCode.CACHE_FILTER });
      if (!m) terms.push({ field, op: "present", value: "" });
      else {
        const op = m[2] === "=" ? "==" : (m[2] as FilterTerm["op"]);
        if (op === "~=") {
          try {
            new RegExp(m[3] as string);
          } catch (err) {
            throw new InvalidArgumentError(`filter ${JSON.stringify(t)}: bad regular expression`, { code: CacheErrorCode.CACHE_FILTER, cause: err });
          }
        }
        terms.push({ field, op, value: m[3] as string });
      }
    }
    if (terms.length > 0) alternatives.push(terms);
  }
  return { alternatives, ...(until !== undefined ? { until } : {}) };
}

function fieldOf(u: UsageInfo, field: string): { value: string; present: boolean } {
  switch (field) {
    case "id":
      return { value: u.id, present: u.id !== "" };
    case "parents":
      return { value: u.parents.join(";"), present: u.parents.length > 0 };
    case "description":
      return { value: u.description, present: u.description !== "" };
    case "type":
      return { value: u.recordType, present: true };
    case "inuse":
      return { value: "", present: u.inUse };
    case "mutable":
      return { value: "", present: u.mutable };
    case "immutable":
      return { value: "", present: !u.mutable };
    case "shared":
      return { value: "", present: u.shared };
    case "private":
      return { value: "", present: !u.shared };
  }
  return { value: "", present: false };
}

function matchFilters(u: UsageInfo, alternatives: FilterTerm[][]): boolean {
  if (alternatives.length === 0) return true;
  return alternatives.some((terms) =>
    terms.every((t) => {
      const { value, present } = fieldOf(u, t.field);
      switch (t.op) {
        case "present":
          return present;
        case "==":
          return present && value === t.value;
        case "!=":
          return !present || value !== t.value;
        case "~=":
          return present && new RegExp(t.value).test(value);
      }
      return false;
    }),
  );
}

/** BuildKit's `sortDeleteRecords`: rank by last use and by usage count, least valuable first. */
function sortForDeletion(list: UsageInfo[]): UsageInfo[] {
  const items = list.map((u) => ({ u, lu: 0, uc: 0 }));
  items.sort((a, b) => {
    if (a.u.lastUsedAt === undefined) return -1;
    if (b.u.lastUsedAt === undefined) return 1;
    return a.u.lastUsedAt.getTime() - b.u.lastUsedAt.getTime();
  });
  let maxLu = 1;
  let last = 0;
  for (const it of items) {
    if (it.u.lastUsedAt !== undefined && it.u.lastUsedAt.getTime() > last) {
      last = it.u.lastUsedAt.getTime();
      maxLu++;
    }
    it.lu = maxLu;
  }
  items.sort((a, b) => a.u.usageCount - b.u.usageCount);
  let maxUc = 1;
  let count = 0;
  for (const it of items) {
    if (it.u.usageCount !== count) {
      count = it.u.usageCount;
      maxUc++;
    }
    it.uc = maxUc;
  }
  items.sort((a, b) => a.lu / maxLu + a.uc / maxUc - (b.lu / maxLu + b.uc / maxUc));
  return items.map((i) => i.u);
}

/**
 * Cache records persisted under `<root>/cache/records/<id>.json` (atomic
 * writes, one cross-process lock). Refs are marked on disk too
 * (`<root>/cache/refs/<id>~<pid>~<n>`), so a prune in another process sees
 * them; markers of dead processes are ignored and removed. Mutable records
 * ({@link new}) are kept by a {@link MutableRecords} (`mutable.ts`).
 */
export class CacheManager {
  readonly #store: CacheManagerStore;
  readonly #dir: CacheDir;
  readonly #mutables: MutableRecords;
  readonly #sizeFlights = new Map<string, Promise<number>>();
  /**
   * Sizes this manager computed, by blob digest (content-addressed, so they
   * never change): a caller that read the record before the size was stored
   * and arrives after the flight ended gets it without a second computation.
   */
  readonly #blobSizes = new Map<string, number>();
  /** Where size computations happened, for tests of single flight. */
  sizeComputations = 0;

  private constructor(store: CacheManagerStore, options: CacheManagerOptions) {
    this.#store = store;
    this.#dir = new CacheDir(store.root, store.layers, options.now ?? (() => new Date()));
    this.#mutables = new MutableRecords(this.#dir, store.layers, {
      find: (id) => this.#read(id),
      record: (id) => this.record(id),
      getByLayer: (chainID, opts) => this.getByLayer(chainID, opts),
    });
  }

  /** Open (creating directories as needed) the cache records of a store. */
  static async open(store: CacheManagerStore, options: CacheManagerOptions = {}): Promise<CacheManager> {
    const m = new CacheManager(store, options);
    await m.#dir.create();
    return m;
  }

  async #read(id: string): Promise<CacheRecord | undefined> {
    try {
      return JSON.parse(await fsp.readFile(path.join(this.#dir.recordsDir, `${checkId(id)}.json`), "utf8")) as CacheRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async #write(r: CacheRecord): Promise<void> {
    await this.#dir.writeRecord(this.#dir.recordsDir, r);
  }

  /** Every record, sorted by ID. */
  async records(): Promise<CacheRecord[]> {
    const out: CacheRecord[] = [];
    for (const name of (await fsp.readdir(this.#dir.recordsDir)).sort()) {
      if (!name.endsWith(".json")) continue;
      const r = await this.#read(name.slice(0, -5)).catch(() => undefined);
      if (r) out.push(r);
    }
    return out;
  }

  /** A record by ID. @throws NotFoundError `ERR_CACHE_RECORD_NOT_FOUND` */
  async record(id: string): Promise<CacheRecord> {
    const r = await this.#read(id);
    if (!r) throw new NotFoundError(`cache record ${id} not found`, { code: CacheErrorCode.CACHE_RECORD_NOT_FOUND, details: { id } });
    return r;
  }

  /** The record of a ChainID, if any. */
  async findByChainID(chainID: Digest | string): Promise<CacheRecord | undefined> {
    return (await this.records()).find((r) => r.chainID === chainID);
  }

  async #ref(r: CacheRecord, opts: GetRefOptions = {}): Promise<CacheRef> {
    const marker = await this.#dir.addRef(r.id);
    let released = false;
    return {
      id: r.id,
      chainID: r.chainID,
      record: r,
      release: async () => {
        if (released) return;
        released = true;
        await this.#dir.lock(async () => {
          await this.#dir.dropRef(marker);
          const cur = await this.#read(r.id);
          if (!cur) return;
          if (!opts.noUpdateLastUsed) {
            cur.lastUsedAt = this.#dir.now().toISOString();
            cur.usageCount += 1;
            await this.#write(cur);
          }
          if (cur.retain === "default" && !(await this.#dir.refCounts()).has(cur.id)) {
            const children = (await this.records()).filter((x) => x.parent === cur.id);
            const mutableChildren = (await this.mutableRecords()).filter((x) => x.parent === cur.id);
            if (children.length === 0 && mutableChildren.length === 0) await this.#remove(cur);
          }
        });
      },
      mount: async () => (await this.#dir.chainSnapshot(r.chainID)).path,
      extract: async () => (await this.#dir.chainSnapshot(r.chainID)).extracted,
      clone: () => this.#ref(r, opts),
      parent: async () => (r.parent === null ? null : this.#ref(await this.record(r.parent), opts)),
      info: () => this.record(r.id),
      size: async () => {
        const layer = await this.#store.layers.get(r.chainID);
        return { blob: await this.size(r.id), unpacked: layer.contentSize ?? layer.size, tar: layer.size };
      },
    };
  }

  /** The store's snapshotter (`<root>/cache/snapshots`), opened on first use. */
  snapshotter(): Promise<Snapshotter> {
    return this.#dir.snapshotter();
  }

  /** Every mutable record (made by {@link new}, not committed yet), sorted by ID. */
  mutableRecords(): Promise<MutableRecord[]> {
    return this.#mutables.list();
  }

  /** A mutable record by ID. @throws NotFoundError `ERR_CACHE_RECORD_NOT_FOUND` */
  mutableRecord(id: string): Promise<MutableRecord> {
    return this.#mutables.get(id);
  }

  /**
   * BuildKit's `New`: a mutable ref on `parent` (a ref, or the ChainID of a
   * layer in the store, whose records are made as {@link getByLayer} makes
   * them) or on nothing. Its directory is a writable snapshot prepared on the
   * committed snapshot of the parent's chain (extracted first when missing).
   * The record is written before the snapshot is prepared, and survives
   * restarts; the parent record is kept while it exists.
   * @throws NotFoundError `ERR_LAYER_NOT_FOUND`, `ERR_CACHE_RECORD_NOT_FOUND`; the errors of extraction
   */
  new(parent?: CacheRef | Digest | string | null, opts: NewRefOptions = {}): Promise<MutableRef> {
    return this.#mutables.new(parent, opts);
  }

  /**
   * BuildKit's `GetMutable`: a ref to a mutable record that was released
   * (or left by this process).
   * @throws NotFoundError `ERR_CACHE_RECORD_NOT_FOUND`; FailedPreconditionError `ERR_CACHE_REF_LOCKED` while another ref holds it
   */
  getMutable(id: string): Promise<MutableRef> {
    return this.#mutables.getMutable(id);
  }

  /**
   * Records for the layer `chainID` and every layer below it (created where
   * missing, reused where present, each holding its layer in the layer store
   * as `cache:<id>`), and a ref to the top one.
   * @throws NotFoundError `ERR_LAYER_NOT_FOUND`
   */
  async getByLayer(chainID: Digest | string, opts: RecordOptions = {}): Promise<CacheRef> {
    const chain: Layer[] = [];
    let cur: Layer | undefined = await this.#store.layers.get(chainID);
    while (cur) {
      chain.unshift(cur);
      cur = cur.parent ? await this.#store.layers.get(cur.parent) : undefined;
    }
    const top = await this.#dir.lock(async () => {
      let parent = null as CacheRecord | null;
      for (const [i, layer] of chain.entries()) {
        const bcid = blobChainId(parent?.blobChainID ?? null, layer.blob.digest, layer.diffID);
        const id = recordIdOf(bcid);
        let rec = await this.#read(id);
        if (!rec) {
          const isTop = i === chain.length - 1;
          rec = {
            id,
            parent: parent?.id ?? null,
            chainID: layer.chainID,
            blobChainID: bcid,
            diffID: layer.diffID,
            blob: { digest: layer.blob.digest, mediaType: layer.blob.mediaType },
            description: isTop ? (opts.description ?? "") : "",
            recordType: opts.recordType ?? "regular",
            retain: opts.retain ?? "retain",
            createdAt: this.#dir.now().toISOString(),
            usageCount: 0,
          };
          await this.#store.layers.acquire(layer.chainID, HOLDER_PREFIX + id);
          await this.#write(rec);
        }
        parent = rec;
      }
      return parent as CacheRecord;
    });
    return this.#ref(top);
  }

  /**
   * BuildKit's `GetByBlob`: register the blob (already in the content store, or
   * given as `source`) as a layer on top of `parent`'s layer, and return a ref to
   * its record. The DiffID is verified when the descriptor carries
   * `containerd.io/uncompressed`.
   */
  async getByBlob(
    desc: { digest: Digest | string; size?: number; mediaType?: string; annotations?: Record<string, string> },
    parent: CacheRef | CacheRecord | null,
    opts: RecordOptions = {},
  ): Promise<CacheRef> {
    const digest = desc.digest as Digest;
    const diffID = desc.annotations?.["containerd.io/uncompressed"];
    const lease = await this.#store.layers.lease();
    try {
      const layer = await this.#store.layers.register(await this.#store.layers.content.open(digest), parent?.chainID ?? null, {
        expectedDigest: digest,
        ...(desc.size !== undefined ? { expectedSize: desc.size } : {}),
        ...(diffID ? { expectedDiffID: diffID } : {}),
        ...(desc.mediaType ? { mediaType: desc.mediaType } : {}),
        lease,
      });
      return await this.getByLayer(layer.chainID, opts);
    } finally {
      await lease.release();
    }
  }

  /** A ref to an existing record. @throws NotFoundError `ERR_CACHE_RECORD_NOT_FOUND` */
  async get(id: string, opts: GetRefOptions = {}): Promise<CacheRef> {
    return this.#ref(await this.record(id), opts);
  }

  /** Change a record's description or retain policy. */
  async update(id: string, patch: { description?: string; retain?: RetainPolicy }): Promise<CacheRecord> {
    return this.#dir.lock(async () => {
      const r = await this.record(id);
      if (patch.description !== undefined) r.description = patch.description;
      if (patch.retain !== undefined) r.retain = patch.retain;
      await this.#write(r);
      return r;
    });
  }

  /**
   * Bytes of a record's blob, computed on first request and stored in the
   * record; concurrent callers share one computation (single flight).
   */
  async size(id: string): Promise<number> {
    return this.#size(await this.record(id), false);
  }

  async #size(r: CacheRecord, locked: boolean): Promise<number> {
    if (r.size !== undefined) return r.size;
    const known = this.#blobSizes.get(r.blob.digest);
    if (known !== undefined) return known;
    let flight = this.#sizeFlights.get(r.id);
    let mine = false;
    if (!flight) {
      mine = true;
      this.sizeComputations++;
      flight = this.#store.layers.content.info(r.blob.digest).then((i) => i.size);
      this.#sizeFlights.set(r.id, flight);
    }
    try {
      const size = await flight;
      if (mine) {
        this.#blobSizes.set(r.blob.digest, size);
        // Persist outside the flight, so a caller holding the lock never waits on one that wants it.
        const persist = async () => {
          const cur = await this.#read(r.id);
          if (cur && cur.size === undefined) {
            cur.size = size;
            await this.#write(cur);
          }
        };
        await (locked ? persist() : this.#dir.lock(persist));
      }
      return size;
    } finally {
      if (mine) this.#sizeFlights.delete(r.id);
    }
  }

  async #usage(records: CacheRecord[], mutables: MutableRecord[], locked: boolean): Promise<UsageInfo[]> {
    const refs = await this.#dir.refCounts();
    const byId = new Map(records.map((r) => [r.id, r]));
    // In use: held by a ref, or an ancestor of a record that is (a held mutable record holds its parent chain).
    const inUse = new Set<string>();
    for (const r of [...records, ...mutables]) {
      if (!refs.has(r.id)) continue;
      inUse.add(r.id);
      let cur: CacheRecord | undefined = r.parent ? byId.get(r.parent) : undefined;
      while (cur && !inUse.has(cur.id)) {
        inUse.add(cur.id);
        cur = cur.parent ? byId.get(cur.parent) : undefined;
      }
    }
    // Shared: held outside the cache (an image), or an ancestor of such a record (BuildKit's markShared).
    const shared = new Set<string>();
    for (const r of records) {
      const holders = await this.#store.layers.holders(r.chainID).catch(() => [] as string[]);
      if (!holders.some((h) => !h.startsWith(HOLDER_PREFIX))) continue;
      let cur: CacheRecord | undefined = r;
      while (cur && !shared.has(cur.id)) {
        shared.add(cur.id);
        cur = cur.parent ? byId.get(cur.parent) : undefined;
      }
    }
    const sizes = await Promise.all(records.map((r) => this.#size(r, locked).catch(() => 0)));
    const counted = new Set<string>();
    const out: UsageInfo[] = [];
    for (const [i, r] of records.entries()) {
      const blobSize = sizes[i] as number;
      const first = !counted.has(r.blob.digest);
      counted.add(r.blob.digest);
      out.push({
        id: r.id,
        parents: r.parent ? [r.parent] : [],
        chainID: r.chainID,
        blobChainID: r.blobChainID,
        description: r.description,
        recordType: r.recordType,
        retain: r.retain,
        createdAt: new Date(r.createdAt),
        ...(r.lastUsedAt ? { lastUsedAt: new Date(r.lastUsedAt) } : {}),
        usageCount: r.usageCount,
        inUse: inUse.has(r.id),
        shared: shared.has(r.id),
        mutable: false,
        size: first ? blobSize : 0,
        blobSize,
      });
    }
    out.push(...(await this.#mutables.usage(mutables, inUse)));
    return out;
  }

  /**
   * `docker builder du`: every record (matching `filters`) with its accounted
   * size; mutable records last, `mutable: true`, sized by their snapshot's
   * disk usage.
   */
  async du(opts: DuOptions = {}): Promise<UsageInfo[]> {
    const { alternatives } = parseFilters(opts.filters ?? []);
    return (await this.#usage(await this.records(), await this.mutableRecords(), false)).filter((u) => matchFilters(u, alternatives));
  }

  async #remove(r: CacheRecord): Promise<void> {
    // Record first, then the holder: a crash in between leaves a holder that
    // repair() drops, never a record whose layer may be gone.
    await fsp.rm(path.join(this.#dir.recordsDir, `${checkId(r.id)}.json`), { force: true });
    await this.#store.layers.release(r.chainID, HOLDER_PREFIX + r.id).catch((err) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
  }

  /**
   * `docker builder prune`. Removes records that are not in use, have no
   * child record (a parent of a kept record is kept; parents become leaves in
   * later passes), match `filters`, were not used within `keepDuration`, and
   * (unless `all`) are regular and not shared with an image. With `keepBytes`
   * records go one at a time, least valuable first (BuildKit's ranking), until
   * the total accounted size of non-shared records is at most `keepBytes`.
   * Then the store's GC frees the bytes.
   */
  async prune(opts: PruneOptions = {}): Promise<PruneResult> {
    const { alternatives, until } = parseFilters(opts.filters ?? []);
    const keepDuration = opts.keepDuration ?? until ?? 0;
    const keepBytes = opts.keepBytes ?? 0;
    if (keepBytes < 0 || keepDuration < 0) throw new InvalidArgumentError("prune: keepBytes and keepDuration must not be negative", { code: CacheErrorCode.CACHE_PRUNE_OPTIONS });
    // A marker lease from the first removal to the end of the GC: a prune killed in between leaves
    // a dead lease, which tells the store's next write to collect what the prune let go.
    const marker = await this.#store.layers.lease();
    try {
      return await this.#prune(opts, alternatives, keepDuration, keepBytes);
    } finally {
      await marker.release().catch(() => undefined);
    }
  }

  async #prune(opts: PruneOptions, alternatives: ReturnType<typeof parseFilters>["alternatives"], keepDuration: number, keepBytes: number): Promise<PruneResult> {
    const removed: UsageInfo[] = await this.#dir.lock(async () => {
      const out: UsageInfo[] = [];
      for (;;) {
        const records = await this.records();
        const mutables = await this.mutableRecords();
        const usage = await this.#usage(records, mutables, true);
        const total = usage.reduce((n, u) => n + (u.shared ? 0 : u.size), 0);
        if (keepBytes !== 0 && total <= keepBytes) break;
        const hasChild = new Set([...records, ...mutables].map((r) => r.parent).filter((p): p is string => p !== null));
        const cutOff = this.#dir.now().getTime() - keepDuration;
        const candidates = usage.filter((u) => {
          if (u.inUse || hasChild.has(u.id)) return false;
          if (!opts.all && (u.recordType === "internal" || u.recordType === "frontend" || u.shared)) return false;
          if (keepDuration !== 0 && u.lastUsedAt !== undefined && u.lastUsedAt.getTime() > cutOff) return false;
          return matchFilters(u, alternatives);
        });
        if (candidates.length === 0) break;
        const batch = keepBytes !== 0 ? sortForDeletion(candidates).slice(0, 1) : candidates;
        for (const u of batch) {
          if (u.mutable) await this.#mutables.remove(mutables.find((x) => x.id === u.id) as MutableRecord);
          else await this.#remove(records.find((x) => x.id === u.id) as CacheRecord);
          out.push(u);
        }
      }
      return out;
    });
    const reclaimedBytes = removed.reduce((n, u) => n + u.size, 0);
    let freedBytes = 0;
    if (removed.length > 0) {
      const gc = this.#store.gc ? () => (this.#store.gc as () => Promise<{ freedBytes: number }>)() : () => this.#store.layers.gc();
      freedBytes = (await gc()).freedBytes;
    }
    // a prune without limits also removes the extracted trees of chains no record holds (they are
    // extracted again when asked for); one with filters or limits removes only what they select
    const plain = alternatives.length === 0 && keepDuration === 0 && keepBytes === 0;
    const snaps = plain ? await this.#dir.existingSnapshotter() : undefined;
    const snapshots = snaps ? await pruneChainSnapshots(snaps, await this.#keptChains()) : { removed: [], freedBytes: 0 };
    return { removed, reclaimedBytes, freedBytes: freedBytes + snapshots.freedBytes, snapshotsRemoved: snapshots.removed };
  }

  /** The ChainIDs cache records hold: their chain snapshots stay. */
  async #keptChains(): Promise<Set<string>> {
    return new Set((await this.records()).map((r) => r.chainID));
  }

  /** Disk usage of the store's snapshots (zero when it has none). */
  async snapshotUsage(): Promise<SnapshotSummary> {
    const snaps = await this.#dir.existingSnapshotter();
    return snaps ? summarizeSnapshots(snaps, await this.#keptChains()) : { count: 0, active: 0, size: 0, reclaimable: 0 };
  }

  /**
   * Drop layer holders `cache:<id>` whose record is gone (left by a crash
   * between removing a record and releasing its holder) and records whose
   * layer is gone; remove mutable records left by a crash (their holding
   * process is gone: garbage, not damage) or whose snapshot is gone, and
   * mutable snapshots no record names. Returns what was fixed.
   */
  async repair(): Promise<{ releasedHolders: Array<{ chainID: Digest; holder: string }>; removedRecords: string[]; removedMutable: string[] }> {
    return this.#dir.lock(async () => {
      const records = await this.records();
      const ids = new Set(records.map((r) => r.id));
      const releasedHolders: Array<{ chainID: Digest; holder: string }> = [];
      for (const layer of await this.#store.layers.list()) {
        for (const h of await this.#store.layers.holders(layer.chainID)) {
          if (h.startsWith(HOLDER_PREFIX) && !ids.has(h.slice(HOLDER_PREFIX.length))) {
            await this.#store.layers.release(layer.chainID, h);
            releasedHolders.push({ chainID: layer.chainID, holder: h });
          }
        }
      }
      const removedRecords: string[] = [];
      for (const r of records) {
        if (!(await this.#store.layers.has(r.chainID))) {
          await fsp.rm(path.join(this.#dir.recordsDir, `${r.id}.json`), { force: true });
          removedRecords.push(r.id);
        }
      }
      const removedMutable = await this.#mutables.repair();
      return { releasedHolders, removedRecords, removedMutable };
    });
  }
}

/** Open the cache records of a store (`openStore` result, or `{ root, layers }`). */
export function openCacheManager(store: CacheManagerStore, options: CacheManagerOptions = {}): Promise<CacheManager> {
  if (!store || typeof store.root !== "string" || !store.layers) {
    throw new FailedPreconditionError("openCacheManager needs a store with root and layers", { code: CacheErrorCode.CACHE_STORE });
  }
  return CacheManager.open(store, options);
}

