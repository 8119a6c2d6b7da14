/**
 * Mutable cache records (after BuildKit's mutable refs, `cache/refs.go`): a
 * writable directory to build a layer in, on the filesystem of its parent's
 * layer chain, committed into an immutable record (`records.ts`) when done.
 *
 * A mutable record is `<root>/cache/mutable/<id>.json` (a random ID) plus an
 * active snapshot `mutable-<id>`, prepared on the committed snapshot of the
 * parent's chain. A ref holds it through a ref marker, as refs of immutable
 * records do (`cachedir.ts`), and the record names the process holding it
 * (`owner`): a record whose owner died was left by a crash between `new` and
 * `commit`, and `repair` removes it. Released, the record stays until
 * `getMutable` reopens it, `commit` turns it into a layer, or `prune`
 * removes it; `du` lists it sized by its snapshot's disk usage.
 *
 * {@link MutableRecords} is the half of `CacheManager` behind its `new`,
 * `getMutable`, `mutableRecords` and `mutableRecord`, and the mutable
 * records' part of its `du`, `prune` and `repair`.
 * @module
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { type Digest, FailedPreconditionError, NotFoundError } from "@berth/digest";
import { type LayerStore, ownerToken } from "@berth/layer-store";
import { type CacheDir, checkId, ID_RE, markerOwnerAlive } from "./cachedir.js";
import { diffTrees } from "./diff/diff.js";
import { directoryTree } from "./diff/dirtree.js";
import { emptyTree } from "./diff/entrytree.js";
import type { IdentityMapping } from "./diff/idmap.js";
import { writeLayer } from "./diff/layer.js";
import type { Tree } from "./diff/types.js";
import { CacheErrorCode, SnapshotErrorCode } from "./errors.js";
import type { CacheManager, CacheRecord, CacheRef, RecordType, RetainPolicy, UsageInfo } from "./records.js";

/**
 * A writable cache record (BuildKit's mutable ref): a prepared snapshot on
 * the committed snapshot of its parent's chain, kept under
 * `<root>/cache/mutable/<id>.json` until it is committed or pruned.
 */
export interface MutableRecord {
  kind: "mutable";
  /** 25 random hex digits (no content identity yet). */
  id: string;
  /** ID of the parent record, `null` on nothing. */
  parent: string | null;
  /** ChainID of the parent's layer chain, `null` on nothing. */
  parentChainID: Digest | null;
  /** Key of its active snapshot in the store's snapshotter. */
  snapshotKey: string;
  description: string;
  recordType: RecordType;
  createdAt: string;
  lastUsedAt?: string;
  usageCount: number;
  /**
   * Owner token (`<pid>-<start>`) of the process holding it, cleared on
   * release: a record whose holder died was left by a crash between `new`
   * and `commit`, and {@link CacheManager.repair} removes it.
   */
  owner?: string;
}

/** Options of {@link CacheManager.new}. */
export interface NewRefOptions {
  description?: string;
  recordType?: RecordType;
}

/** Options of {@link MutableRef.commit}. */
export interface CommitRefOptions {
  /** Description of the new record (default: the mutable record's). */
  description?: string;
  recordType?: RecordType;
  retain?: RetainPolicy;
  /** Host owners on disk → container owners in the layer (for a rootless writer); the parent's tree is mapped the same way. */
  idMapping?: IdentityMapping;
  /** Hash files whose metadata agrees with the parent's (default false: size and mtime decide, as Docker). */
  compareContent?: boolean;
  /** mtime of every layer entry in seconds (default 0: the same tree gives the same DiffID). */
  mtime?: number;
  /** Keep the files' own mtimes (whole seconds) instead. */
  keepMtimes?: boolean;
}

/**
 * A writable ref (BuildKit's `MutableRef`): a directory to build in, on the
 * filesystem of its parent's layer chain. {@link commit} turns it into an
 * immutable ref; {@link release} keeps it as a record (reopen it with
 * {@link CacheManager.getMutable}) until pruned.
 */
export interface MutableRef {
  readonly id: string;
  readonly mutable: true;
  /** The parent record, `null` on nothing. */
  readonly parent: CacheRecord | null;
  /** The record as this ref saw it last. */
  info(): MutableRecord;
  /** The writable directory. @throws FailedPreconditionError `ERR_CACHE_REF_RELEASED` after release/commit */
  mount(): Promise<string>;
  /**
   * Diff the directory against the parent's tree, write the deterministic
   * layer tar (whiteouts for removed paths, opaque markers for replaced
   * directories), register it in the layer store on the parent's chain,
   * record it (its ChainID and BlobChainID as {@link CacheManager.getByLayer}
   * does) and commit the snapshot under the new ChainID, so children prepare
   * on it without extracting. The mutable record is gone afterwards; this ref
   * is released.
   * @throws FailedPreconditionError `ERR_CACHE_REF_RELEASED`; the errors of the diff and the layer store
   */
  commit(opts?: CommitRefOptions): Promise<CacheRef>;
  /** Release the ref; the record stays (last-used time and usage count updated; idempotent). */
  release(): Promise<void>;
}

/** What mutable records use of the immutable ones: `CacheManager`'s `record` and `getByLayer`, and `find` (a record, or `undefined`). */
export type ImmutableRecords = Pick<CacheManager, "record" | "getByLayer"> & {
  find(id: string): Promise<CacheRecord | undefined>;
};

/** Snapshot keys of mutable records: `mutable-<id>`. */
const MUTABLE_SNAPSHOT_PREFIX = "mutable-";

/** The mutable records of one store's cache (see the module's description). */
export class MutableRecords {
  readonly #dir: CacheDir;
  readonly #layers: LayerStore;
  readonly #records: ImmutableRecords;

  constructor(dir: CacheDir, layers: LayerStore, records: ImmutableRecords) {
    this.#dir = dir;
    this.#layers = layers;
    this.#records = records;
  }

  #file(id: string): string {
    return path.join(this.#dir.mutableDir, `${id}.json`);
  }

  async #read(id: string): Promise<MutableRecord | undefined> {
    try {
      const r = JSON.parse(await fsp.readFile(this.#file(checkId(id)), "utf8")) as MutableRecord;
      return r.kind === "mutable" && r.id === id ? r : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  /** {@link CacheManager.mutableRecords}: every mutable record, sorted by ID. */
  async list(): Promise<MutableRecord[]> {
    const out: MutableRecord[] = [];
    const names = await fsp.readdir(this.#dir.mutableDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [] as string[];
      throw err;
    });
    for (const name of names.sort()) {
      if (!name.endsWith(".json") || !ID_RE.test(name.slice(0, -5))) continue;
      const r = await this.#read(name.slice(0, -5)).catch(() => undefined);
      if (r) out.push(r);
    }
    return out;
  }

  /** {@link CacheManager.mutableRecord}. @throws NotFoundError `ERR_CACHE_RECORD_NOT_FOUND` */
  async get(id: string): Promise<MutableRecord> {
    const r = await this.#read(id);
    if (!r) throw new NotFoundError(`mutable cache record ${id} not found`, { code: CacheErrorCode.CACHE_RECORD_NOT_FOUND, details: { id } });
    return r;
  }

  /** Remove a mutable record and its snapshot (the caller holds the cache lock; `prune`, `repair`). */
  async remove(r: MutableRecord): Promise<void> {
    // Record first: a crash in between leaves an active snapshot without a record, which repair() removes.
    await fsp.rm(this.#file(checkId(r.id)), { force: true });
    const snapshots = await this.#dir.snapshotter();
    if ((await snapshots.find(r.snapshotKey))?.kind === "active") await snapshots.remove(r.snapshotKey);
  }

  /**
   * {@link CacheManager.new}. The record and the ref marker are written
   * (under the lock, the parent record checked still there) before the
   * snapshot is prepared, and removed again when that fails.
   */
  async new(parent?: CacheRef | Digest | string | null, opts: NewRefOptions = {}): Promise<MutableRef> {
    let held: CacheRef | undefined;
    let parentRec: CacheRecord | null = null;
    if (typeof parent === "string") {
      held = await this.#records.getByLayer(parent);
      parentRec = held.record;
    } else if (parent) {
      parentRec = await this.#records.record(parent.id);
    }
    try {
      const snapshots = await this.#dir.snapshotter();
      if (parentRec) await this.#dir.chainSnapshot(parentRec.chainID);
      const id = randomBytes(13).toString("hex").slice(0, 25);
      const rec: MutableRecord = {
        kind: "mutable",
        id,
        parent: parentRec?.id ?? null,
        parentChainID: parentRec?.chainID ?? null,
        snapshotKey: `${MUTABLE_SNAPSHOT_PREFIX}${id}`,
        description: opts.description ?? "",
        recordType: opts.recordType ?? "regular",
        createdAt: this.#dir.now().toISOString(),
        usageCount: 0,
        owner: ownerToken(),
      };
      const marker = await this.#dir.lock(async () => {
        // the parent may have been pruned meanwhile: NotFoundError ERR_CACHE_RECORD_NOT_FOUND
        if (parentRec) await this.#records.record(parentRec.id);
        const marker = await this.#dir.addRef(id);
        await this.#dir.writeRecord(this.#dir.mutableDir, rec);
        return marker;
      });
      try {
        await snapshots.prepare(rec.snapshotKey, rec.parentChainID ?? undefined);
      } catch (err) {
        await this.#dir.lock(async () => {
          await fsp.rm(this.#file(id), { force: true });
          await this.#dir.dropRef(marker);
        });
        throw err;
      }
      return this.#ref(rec, marker, parentRec);
    } finally {
      await held?.release();
    }
  }

  /** {@link CacheManager.getMutable}. */
  async getMutable(id: string): Promise<MutableRef> {
    const { rec, marker } = await this.#dir.lock(async () => {
      const rec = await this.get(id);
      if ((await this.#dir.refCounts()).has(id)) {
        throw new FailedPreconditionError(`mutable cache record ${id} is held by another ref`, { code: CacheErrorCode.CACHE_REF_LOCKED, details: { id } });
      }
      const marker = await this.#dir.addRef(id);
      rec.owner = ownerToken();
      await this.#dir.writeRecord(this.#dir.mutableDir, rec);
      return { rec, marker };
    });
    return this.#ref(rec, marker, rec.parent ? ((await this.#records.find(rec.parent)) ?? null) : null);
  }

  /** The ref object of a held record: usable until released or committed (`busy` while a commit runs). */
  #ref(rec: MutableRecord, marker: string, parent: CacheRecord | null): MutableRef {
    let state: "open" | "busy" | "done" = "open";
    let last = rec;
    const usable = (what: string) => {
      if (state !== "open") {
        throw new FailedPreconditionError(`mutable cache ref ${rec.id}: ${what} after it was ${state === "busy" ? "being committed" : "released or committed"}`, {
          code: CacheErrorCode.CACHE_REF_RELEASED,
          details: { id: rec.id },
        });
      }
    };
    return {
      id: rec.id,
      mutable: true,
      parent,
      info: () => ({ ...last }),
      mount: async () => {
        usable("mount");
        return (await this.#dir.snapshotter()).mounts(rec.snapshotKey);
      },
      release: async () => {
        if (state === "done") return;
        state = "done";
        await this.#dir.lock(async () => {
          await this.#dir.dropRef(marker);
          const cur = await this.#read(rec.id);
          if (!cur) return;
          cur.lastUsedAt = this.#dir.now().toISOString();
          cur.usageCount += 1;
          delete cur.owner;
          await this.#dir.writeRecord(this.#dir.mutableDir, cur);
          last = cur;
        });
      },
      commit: async (opts: CommitRefOptions = {}) => {
        usable("commit");
        state = "busy";
        try {
          const ref = await this.#commit(rec, marker, opts);
          state = "done";
          return ref;
        } catch (err) {
          // usable again, unless it was released meanwhile
          if ((state as string) === "busy") state = "open";
          throw err;
        }
      },
    };
  }

  /** {@link MutableRef.commit}: diff → layer tar → layer store → record → snapshot committed; then the mutable record goes. */
  async #commit(rec: MutableRecord, marker: string, opts: CommitRefOptions): Promise<CacheRef> {
    const snapshots = await this.#dir.snapshotter();
    const dir = await snapshots.mounts(rec.snapshotKey);
    const treeOpts = opts.idMapping ? { idMapping: opts.idMapping } : {};
    let lower: Tree = emptyTree();
    if (rec.parentChainID) lower = directoryTree((await this.#dir.chainSnapshot(rec.parentChainID)).path, treeOpts);
    // A snapshot copied by Node's calls (no GNU cp) keeps times to the millisecond only (utimes): an
    // unchanged file is up to 1 ms off its parent's. Flooring both sides to the millisecond was flaky.
    const changes = await diffTrees(lower, directoryTree(dir, treeOpts), { mtimeTolerance: 0.001, ...(opts.compareContent ? { compareContent: true } : {}) });
    const tar = writeLayer(directoryTree(dir, treeOpts), changes, { mtime: opts.mtime ?? 0, ...(opts.keepMtimes ? { keepMtimes: true } : {}) });
    const lease = await this.#layers.lease();
    let ref: CacheRef;
    let diffID: Digest;
    try {
      const layer = await this.#layers.register(tar, rec.parentChainID, { lease });
      diffID = layer.diffID;
      ref = await this.#records.getByLayer(layer.chainID, {
        description: opts.description ?? rec.description,
        recordType: opts.recordType ?? rec.recordType,
        ...(opts.retain ? { retain: opts.retain } : {}),
      });
    } finally {
      await lease.release();
    }
    try {
      try {
        await snapshots.commit(ref.chainID, rec.snapshotKey, { labels: { "berth.diffID": diffID } });
      } catch (err) {
        if ((err as { code?: string }).code !== SnapshotErrorCode.SNAPSHOT_EXISTS) throw err;
        await snapshots.remove(rec.snapshotKey); // the chain's snapshot exists already: the same tree
      }
      await this.#dir.lock(async () => {
        await fsp.rm(this.#file(rec.id), { force: true });
        await this.#dir.dropRef(marker);
      });
    } catch (err) {
      await ref.release();
      throw err;
    }
    return ref;
  }

  /**
   * The {@link CacheManager.du} entries of `mutables` (after the immutable
   * ones): no chain yet, never shared, sized by the disk usage of their
   * active snapshot, measured each time (0 when the snapshot is gone).
   */
  async usage(mutables: MutableRecord[], inUse: ReadonlySet<string>): Promise<UsageInfo[]> {
    if (mutables.length === 0) return [];
    const snapshots = await this.#dir.snapshotter();
    const out: UsageInfo[] = [];
    for (const m of mutables) {
      const size = await snapshots.usage(m.snapshotKey).then(
        (u) => u.size,
        () => 0,
      );
      out.push({
        id: m.id,
        parents: m.parent ? [m.parent] : [],
        chainID: null,
        blobChainID: null,
        description: m.description,
        recordType: m.recordType,
        retain: "retain",
        createdAt: new Date(m.createdAt),
        ...(m.lastUsedAt ? { lastUsedAt: new Date(m.lastUsedAt) } : {}),
        usageCount: m.usageCount,
        inUse: inUse.has(m.id),
        shared: false,
        mutable: true,
        size,
        blobSize: size,
      });
    }
    return out;
  }

  /**
   * The mutable part of {@link CacheManager.repair} (the caller holds the
   * cache lock): remove mutable records nobody holds that a crash left (their
   * owner is gone: garbage, not damage) or whose snapshot is gone, and
   * `mutable-<id>` snapshots no record names. The IDs of the records removed.
   */
  async repair(): Promise<string[]> {
    const removed: string[] = [];
    const refs = await this.#dir.refCounts();
    const snapshots = await this.#dir.snapshotter();
    const mutables = await this.list();
    for (const m of mutables) {
      if (refs.has(m.id) || (m.owner !== undefined && markerOwnerAlive(m.owner))) continue; // held, or being made or committed
      const crashed = m.owner !== undefined;
      if (crashed || (await snapshots.find(m.snapshotKey))?.kind !== "active") {
        await this.remove(m);
        removed.push(m.id);
      }
    }
    const named = new Set(mutables.filter((m) => !removed.includes(m.id)).map((m) => m.snapshotKey));
    for (const s of await snapshots.walk((s) => s.kind === "active" && s.key.startsWith(MUTABLE_SNAPSHOT_PREFIX))) {
      const id = s.key.slice(MUTABLE_SNAPSHOT_PREFIX.length);
      if (ID_RE.test(id) && !named.has(s.key) && !(await this.#read(id))) await snapshots.remove(s.key);
    }
    return removed;
  }
}
