/**
 * What the two kinds of cache records share in `<root>/cache/`: immutable
 * records (`records.ts`, `records/<id>.json`) and mutable ones
 * (`mutable.ts`, `mutable/<id>.json`) have IDs of 25 hex digits, are written
 * atomically under one cross-process lock, are held through ref markers
 * (`refs/<id>~<owner>~<random>`, so a prune in another process sees them;
 * markers of dead processes are ignored and removed), and mount layer chains
 * from one snapshotter (`snapshots/`).
 * @module
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { type Digest, InvalidArgumentError } from "@berth/digest";
import { isOwnerAlive, type LayerStore, ownerToken, parseOwnerToken, withLock, writeFileAtomic } from "@berth/layer-store";
import { CacheErrorCode } from "./errors.js";
import { type ChainSnapshot, ensureChainSnapshot } from "./snapshot/chain.js";
import { openSnapshotter, SNAPSHOTS_DIR, type Snapshotter } from "./snapshot/snapshotter.js";

/** A record ID, immutable or mutable: 25 hex digits. */
export const ID_RE = /^[0-9a-f]{25}$/;
/** Name of the cross-process lock (layer-store's `withLock(root, "cache")`). */
const LOCK = "cache";

/** `id`, if it is a well-formed record ID. @throws InvalidArgumentError `ERR_CACHE_RECORD_ID` */
export function checkId(id: string): string {
  if (!ID_RE.test(id)) throw new InvalidArgumentError(`cache record ID ${JSON.stringify(id)} is malformed`, { code: CacheErrorCode.CACHE_RECORD_ID });
  return id;
}

/** Whether the process of an owner token (`<pid>-<start>`, or a bare pid from older stores' ref markers) is alive. */
export function markerOwnerAlive(token: string): boolean {
  const owner = parseOwnerToken(token.includes("-") ? token : `${token}--`);
  return owner !== undefined && isOwnerAlive(owner);
}

/** The cache directory of one store, as its `CacheManager` (`records.ts`) and mutable records (`mutable.ts`) use it. */
export class CacheDir {
  /** `<root>/cache/records`: immutable records. */
  readonly recordsDir: string;
  /** `<root>/cache/refs`: ref markers. */
  readonly refsDir: string;
  /** `<root>/cache/mutable`: mutable records. */
  readonly mutableDir: string;
  /** The clock of created/last-used times. */
  readonly now: () => Date;
  readonly #root: string;
  readonly #layers: LayerStore;
  #snapshots: Promise<Snapshotter> | undefined;

  constructor(root: string, layers: LayerStore, now: () => Date) {
    this.#root = root;
    this.#layers = layers;
    this.now = now;
    const dir = path.join(root, "cache");
    this.recordsDir = path.join(dir, "records");
    this.refsDir = path.join(dir, "refs");
    this.mutableDir = path.join(dir, "mutable");
  }

  /** Create the directories (as needed). */
  async create(): Promise<void> {
    await fsp.mkdir(this.recordsDir, { recursive: true });
    await fsp.mkdir(this.refsDir, { recursive: true });
    await fsp.mkdir(this.mutableDir, { recursive: true });
  }

  /** Run `fn` under the cache's cross-process lock. */
  lock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.#root, LOCK, fn);
  }

  /** Write the record `r` to `<dir>/<id>.json` (atomic). @throws InvalidArgumentError `ERR_CACHE_RECORD_ID` */
  async writeRecord(dir: string, r: { id: string }): Promise<void> {
    await writeFileAtomic(path.join(dir, `${checkId(r.id)}.json`), `${JSON.stringify(r)}\n`);
  }

  /** Mark the record `id` as held by this process; the marker's path, for {@link dropRef}. */
  async addRef(id: string): Promise<string> {
    const marker = path.join(this.refsDir, `${id}~${ownerToken()}~${randomBytes(6).toString("hex")}`);
    await writeFileAtomic(marker, "");
    return marker;
  }

  /** Remove a marker of {@link addRef} (idempotent). */
  async dropRef(marker: string): Promise<void> {
    await fsp.rm(marker, { force: true });
  }

  /** How many live refs hold each record, by ID; markers of dead processes are removed on the way. */
  async refCounts(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const name of await fsp.readdir(this.refsDir)) {
      const [id, pid] = name.split("~");
      if (!id || !pid) continue;
      if (!markerOwnerAlive(pid)) {
        await fsp.rm(path.join(this.refsDir, name), { force: true });
        continue;
      }
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return counts;
  }

  /** The snapshotter when the store has one already (reading usage creates no directory), else undefined. */
  async existingSnapshotter(): Promise<Snapshotter | undefined> {
    if (this.#snapshots) return this.#snapshots;
    const there = await fsp.stat(path.join(this.#root, SNAPSHOTS_DIR, "records")).then(
      () => true,
      () => false,
    );
    return there ? this.snapshotter() : undefined;
  }

  /** The store's snapshotter (`<root>/cache/snapshots`), opened on first use. */
  snapshotter(): Promise<Snapshotter> {
    this.#snapshots ??= openSnapshotter({ root: this.#root, now: this.now });
    return this.#snapshots;
  }

  /** The committed snapshot of the layer chain `chainID`, extracted first when missing. */
  async chainSnapshot(chainID: Digest | string): Promise<ChainSnapshot> {
    return ensureChainSnapshot({ layers: this.#layers, content: this.#layers.content }, await this.snapshotter(), chainID);
  }
}
