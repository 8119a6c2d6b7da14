/**
 * The shared core of one open store root: the image metadata log (journal on
 * disk, or memory), the images lock, `index.json` upkeep, and verified reads of
 * configs and manifests. The image store, the reference store, the facade and
 * fsck all work through one `Core`.
 * @module
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { DataIntegrityError, type Digest, NotFoundError, sha256 } from "@berth/digest";
import { LRUCache } from "lru-cache";
import { type ContentStore, type LayerStore, withLock, writeFileAtomic } from "@berth/layer-store";
import { closedError, imageNotFound, ImageStoreErrorCode } from "./errors.js";
import { INDEX_FILE, readIndex, renderIndex } from "./layout.js";
import type { ImageRecord, MetaProblem, MetaState, Op } from "./meta.js";

/** Largest config or manifest blob read into memory (Docker configs with long histories stay far below). */
export const MAX_DOCUMENT_SIZE = 16 * 1024 * 1024;
/** Bytes of verified configs and manifests one open store keeps in memory. */
const DOCUMENT_CACHE_BYTES = 32 * 1024 * 1024;
/** Name of the cross-process lock that serialises image and reference metadata writes. */
export const IMAGES_LOCK = "images";
/** Prefix of the layer holder names images use: `image:<id>`. */
export const IMAGE_HOLDER_PREFIX = "image:";

/** Where image metadata lives: the journal on disk, or memory. @internal */
export interface MetaLog {
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

/** Shared machinery of one open root. @internal */
export class Core {
  closed = false;
  /** In-memory stores: index.json content kept here; lock is an in-process queue. */
  memoryIndex: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /**
   * Configs and manifests already read and verified, by digest (content
   * addressed, so never stale): listing 1,000 images reads no file twice.
   */
  #documents = new LRUCache<Digest, Uint8Array>({ maxSize: DOCUMENT_CACHE_BYTES, sizeCalculation: (b) => b.byteLength || 1 });
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

  /**
   * A config or manifest, read whole and checked against its digest; from the
   * cache when it was verified before, unless `cached: false` (fsck reads the
   * disk, and what it finds damaged is no longer served from memory either).
   */
  async readVerified(d: Digest, what: string, opts: { cached?: boolean } = {}): Promise<Uint8Array> {
    try {
      return await this.readDocument(d, what, opts);
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new DataIntegrityError(`${what} ${d}: blob missing from the store (run fsck)`, {
          code: ImageStoreErrorCode.BLOB_MISSING,
          cause: err,
          details: { digest: d },
        });
      }
      throw err;
    }
  }

  /** {@link readVerified} with the content store's NotFoundError as it is (a blob that may be absent). */
  async readDocument(d: Digest, what: string, opts: { cached?: boolean } = {}): Promise<Uint8Array> {
    if (opts.cached === false) this.#documents.delete(d);
    const known = this.#documents.get(d);
    if (known) return known.slice();
    const bytes = await this.content.readBytes(d, MAX_DOCUMENT_SIZE);
    const got = sha256(bytes);
    if (got !== d) {
      throw new DataIntegrityError(`${what} ${d}: stored blob hashes to ${got} (run fsck)`, {
        code: ImageStoreErrorCode.DIGEST_MISMATCH,
        details: { digest: d, actual: got },
      });
    }
    this.#documents.set(d, bytes.slice());
    return bytes;
  }
}
