/**
 * The registry's own metadata of one repository, kept as a store pin record
 * (`<root>/pins/registry.<hash>.json`, written whole with temp + fsync +
 * rename by `@berth/image-store`): manifests pushed (bytes in the content
 * store under their digest), tags, blobs pushed or mounted, referrers. The
 * record's `blobs` (what GC keeps) are derived from it on every write, so a
 * record and what it keeps never disagree.
 * @module
 */
import type { Digest } from "@berth/digest";
import type { Store } from "@berth/image-store";
import { recordName } from "./names.js";

/** A manifest (or index) pushed to a repository. */
export interface ManifestEntry {
  mediaType: string;
  size: number;
  /** Digests of what it names: config and layers, or child manifests. */
  refs: Digest[];
  subject?: Digest;
  /** The manifest's `artifactType`, else its config's media type (not for an index without one). */
  artifactType?: string;
  annotations?: Record<string, string>;
  /** Set when the manifest is an image the store holds (its ID): then the image keeps its blobs. */
  image?: Digest;
  /** When it was pushed (epoch ms). */
  at: number;
}

/** One repository's record (`data` of its pin record). */
export interface RepoRecord {
  /** The store's repository name. */
  name: string;
  manifests: Record<string, ManifestEntry>;
  /** Tags of manifests in `manifests`. Tags of images are the store's references; these say which pushed bytes a tag serves. */
  tags: Record<string, Digest>;
  /** Blobs pushed or mounted into the repository, with the time they came (epoch ms). */
  blobs: Record<string, number>;
  /**
   * Blobs deleted from the repository (`DELETE /v2/<name>/blobs/<digest>`), with the time:
   * not served through it any more, even where every stored blob is visible, until pushed
   * or mounted again. Forgotten after the grace period.
   */
  deleted?: Record<string, number>;
}

/** An empty record. */
export function emptyRecord(name: string): RepoRecord {
  return { name, manifests: {}, tags: {}, blobs: {} };
}

/** True when the record holds nothing. */
export function isEmpty(rec: RepoRecord): boolean {
  return (
    Object.keys(rec.manifests).length === 0 &&
    Object.keys(rec.tags).length === 0 &&
    Object.keys(rec.blobs).length === 0 &&
    Object.keys(rec.deleted ?? {}).length === 0
  );
}

/**
 * What a record keeps from GC: its manifests, the blobs pushed or mounted,
 * and what non-image manifests name (an image's store record keeps its own).
 */
export function pinnedBlobs(rec: RepoRecord): Digest[] {
  const out = new Set<Digest>();
  for (const [d, e] of Object.entries(rec.manifests)) {
    out.add(d as Digest);
    if (!e.image) for (const r of e.refs) out.add(r);
  }
  for (const d of Object.keys(rec.blobs)) out.add(d as Digest);
  return [...out];
}

/** True when the record itself keeps `digest` from GC (see {@link pinnedBlobs}); an image's blobs are kept by the image. */
export function recordPins(rec: RepoRecord | undefined, digest: Digest): boolean {
  if (!rec) return false;
  if (rec.blobs[digest] !== undefined || rec.manifests[digest] !== undefined) return true;
  for (const e of Object.values(rec.manifests)) if (!e.image && e.refs.includes(digest)) return true;
  return false;
}

/** True when `digest` belongs to the record's repository: pushed, mounted, a manifest, or named by one. */
export function recordHas(rec: RepoRecord | undefined, digest: Digest): boolean {
  if (!rec) return false;
  if (rec.blobs[digest] !== undefined || rec.manifests[digest] !== undefined) return true;
  for (const e of Object.values(rec.manifests)) if (e.refs.includes(digest)) return true;
  return false;
}

/**
 * Records of a store, cached in memory (this process is the only writer of
 * the registry's records: one `berth serve` per store root) and written
 * through the store's pin records.
 */
export class RecordStore {
  readonly #cache = new Map<string, RepoRecord | undefined>();
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(readonly store: Store) {}

  /** The record of a store repository, or undefined. */
  async get(name: string): Promise<RepoRecord | undefined> {
    if (this.#cache.has(name)) return this.#cache.get(name);
    const pin = await this.store.pins.read<RepoRecord>(recordName(name));
    const rec = pin?.data;
    this.#cache.set(name, rec);
    return rec;
  }

  /** Every record (read from disk once). */
  async all(): Promise<RepoRecord[]> {
    const out: RepoRecord[] = [];
    for (const pin of await this.store.pins.list("registry.")) {
      const rec = (await this.store.pins.read<RepoRecord>(pin))?.data;
      if (rec && typeof rec.name === "string") {
        if (!this.#cache.has(rec.name)) this.#cache.set(rec.name, rec);
        const cached = this.#cache.get(rec.name);
        if (cached) out.push(cached);
      }
    }
    return out;
  }

  /**
   * Change a record, one change per repository at a time: `fn` gets a copy
   * (empty when there is none) and returns a value; the copy is written (or
   * the record removed when empty) and becomes the cached one only once on disk.
   */
  update<T>(name: string, fn: (rec: RepoRecord) => Promise<T> | T): Promise<T> {
    const prev = this.#queues.get(name) ?? Promise.resolve();
    const run = prev.then(async () => {
      const current = await this.get(name);
      const copy: RepoRecord = current ? structuredClone(current) : emptyRecord(name);
      const out = await fn(copy);
      if (isEmpty(copy)) {
        if (current) await this.store.pins.remove(recordName(name));
        this.#cache.set(name, undefined);
      } else {
        await this.store.pins.write(recordName(name), { blobs: pinnedBlobs(copy), data: copy });
        this.#cache.set(name, copy);
      }
      return out;
    });
    const settled = run.catch(() => {});
    this.#queues.set(name, settled);
    void settled.then(() => {
      if (this.#queues.get(name) === settled) this.#queues.delete(name);
    });
    return run;
  }
}
