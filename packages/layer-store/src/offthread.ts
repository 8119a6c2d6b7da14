/**
 * A blob writer that hashes and writes on a worker thread, for servers whose
 * main thread has sockets to serve: `berth serve`'s registry uploads. The
 * content store's own writer hashes each chunk on the calling thread (SHA-256
 * runs at ~1.5–1.75 GB/s here); this one copies chunks into 1 MiB pieces and
 * hands each piece, transferred rather than copied, to a worker that hashes it
 * and writes it into the ingest file (`ContentStore.fileWriter`) and hands
 * it back to be filled again. A server's main thread then only reads its
 * sockets, and a writer's memory is its five pieces (pieces left for the
 * worker's garbage collector to free took `berth serve` from 140 to 240 MiB
 * over a few 256 MiB uploads).
 *
 * The workers are shared by every writer of the process (one per core but
 * one, at least one, at most four: the calling thread keeps a core for its
 * sockets; a pull with a worker per core ran 5 % faster here but grew to
 * ~230 MiB, each worker's garbage collector letting ~60 MiB of freed output
 * buffers wait), started on first use and kept from holding the process open
 * while no writer is open.
 * @module
 */
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { type Digest, FailedPreconditionError, InvalidArgumentError, type Sha256Hash, sha256 } from "@berth/digest";
import { verifyExpected } from "./content-common.js";
import { LayerStoreErrorCode } from "./errors.js";
import type { LayerScanOptions, ScanFacts } from "./scan.js";
import { fromWire, startWorker, type WireError, workerScript } from "./threads.js";
import type { BlobWriter, CommitResult, ContentIngester, FileWriter, OffThreadWriter, OffThreadWriterOptions, WrittenBlob } from "./types.js";

/** A message to a write worker (see `write-worker.ts`); `hash: false`: the writer hashes the pieces itself. */
export type WriteRequest =
  | { op: "open"; id: number; path: string; scan?: LayerScanOptions; hash: boolean }
  | { op: "write"; id: number; piece: ArrayBuffer; length: number }
  | { op: "finish"; id: number }
  | { op: "close"; id: number };

/** A write worker's answer: a piece written, the result of `finish`, the file closed after `close`, or the error that ended the file. */
export type WriteReply =
  | { id: number; written: number; piece?: ArrayBuffer }
  | { id: number; closed: true }
  | { id: number; digest?: Digest; size: number; facts?: Omit<ScanFacts, "notTar"> & { notTar?: WireError } }
  | { id: number; error: WireError };

/** Bytes per piece handed to a worker. */
const PIECE = 1 << 20;
/** Pieces of one writer sent and not yet written before `write` waits. */
const IN_FLIGHT = 4;

/**
 * A writer into `content` that hashes and writes on a worker thread (see the
 * module doc). `write` copies the chunk (its memory may be reused at once) and
 * waits only when four pieces are in flight; commit and abort are the content
 * store's. A content store without `fileWriter` (the memory store) gives its
 * own writer, with a `flush` that has nothing to wait for.
 */
export async function openOffThreadWriter(content: ContentIngester, opts: OffThreadWriterOptions = {}): Promise<OffThreadWriter> {
  const { scan, ...writerOpts } = opts;
  if (!content.fileWriter) {
    if (scan) throw new InvalidArgumentError("openOffThreadWriter: a scan needs a content store with files (fileWriter)");
    return sameThreadWriter(await content.writer(writerOpts));
  }
  const file = await content.fileWriter(writerOpts);
  try {
    return new PieceWriter(file, pool.attach(), scan);
  } catch (err) {
    await file.abort();
    throw err;
  }
}

/** The memory store's writer as an {@link OffThreadWriter}: everything on this thread, the digest for `finish` hashed beside it. */
function sameThreadWriter(w: BlobWriter): OffThreadWriter {
  const hash = sha256.create();
  let finished: WrittenBlob | undefined;
  return {
    get written() {
      return w.written;
    },
    async write(chunk) {
      if (finished) throw new FailedPreconditionError("blob writer is already finished", { code: LayerStoreErrorCode.INGEST_CLOSED });
      await w.write(chunk);
      hash.update(chunk);
    },
    flush: async () => {},
    finish: async () => {
      finished ??= { digest: hash.digest(), size: w.written };
      return finished;
    },
    commit: (size, digest) => w.commit(size, digest),
    abort: () => w.abort(),
  };
}

interface Pending {
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

class PieceWriter implements OffThreadWriter {
  readonly #file: FileWriter;
  readonly #slot: Slot;
  readonly #id: number;
  readonly #pending: Pending[] = [];
  #piece: Uint8Array | undefined;
  /** Pieces the worker has written and given back. */
  readonly #spare: ArrayBuffer[] = [];
  #filled = 0;
  #written = 0;
  #failed: unknown;
  #done = false;
  #finished: { resolve: (r: WrittenBlob) => void; reject: (err: unknown) => void } | undefined;
  #finishing: Promise<WrittenBlob> | undefined;
  /**
   * With a scan the worker also inflates the blob and hashes the tar, and this
   * thread, which only reads the sockets, hashes the blob: the pieces are
   * hashed here before they go (`berth pull` of the registry bench's image:
   * the worker was busy 1.8 of its 2.0 s, 0.83 s of it hashing; this thread
   * idle 1.4 s).
   */
  readonly #hash: Sha256Hash | undefined;
  /** Resolves when the worker will write no more of this file (it answered `close`, or it is gone). */
  #stopped: Promise<void>;
  #stop!: () => void;

  constructor(file: FileWriter, slot: Slot, scan: LayerScanOptions | undefined) {
    this.#file = file;
    this.#slot = slot;
    this.#stopped = new Promise((resolve) => {
      this.#stop = resolve;
    });
    this.#hash = scan ? sha256.create() : undefined;
    this.#id = slot.open(this, file.path, scan, this.#hash === undefined);
  }

  get path(): string {
    return this.#file.path;
  }

  get written(): number {
    return this.#written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#check();
    if (!(chunk instanceof Uint8Array)) throw new InvalidArgumentError("write expects a Uint8Array chunk");
    for (let off = 0; off < chunk.length; ) {
      if (!this.#piece) {
        const spare = this.#spare.pop();
        this.#piece = spare ? new Uint8Array(spare) : new Uint8Array(PIECE);
      }
      const n = Math.min(PIECE - this.#filled, chunk.length - off);
      this.#piece.set(chunk.subarray(off, off + n), this.#filled);
      this.#filled += n;
      off += n;
      if (this.#filled === PIECE) this.#send();
      while (this.#pending.length > IN_FLIGHT) await this.#pending[0]!.done;
    }
  }

  async flush(): Promise<void> {
    this.#check();
    if (this.#filled > 0) this.#send();
    while (this.#pending.length > 0) await this.#pending[0]!.done;
    if (this.#failed !== undefined) throw this.#failed;
  }

  finish(): Promise<WrittenBlob> {
    this.#finishing ??= (async () => {
      await this.flush();
      return new Promise<WrittenBlob>((resolve, reject) => {
        this.#finished = { resolve, reject };
        this.#slot.post({ op: "finish", id: this.#id });
      });
    })();
    return this.#finishing;
  }

  async commit(expectedSize?: number, expectedDigest?: Digest | string): Promise<CommitResult> {
    // a failed writer goes on to abort its file below; a finished one is refused
    if (this.#done) this.#check();
    try {
      const got = await this.finish();
      this.#done = true;
      verifyExpected("blob", got, expectedSize, undefined);
      return await this.#file.commit(got.digest, got.size, expectedDigest);
    } catch (err) {
      if (!this.#done) await this.#close();
      this.#done = true;
      this.#hash?.destroy();
      await this.#file.abort().catch(() => {});
      throw err;
    } finally {
      this.#slot.detach(this.#id);
    }
  }

  async abort(): Promise<void> {
    if (!this.#done) {
      this.#done = true;
      // a write or flush still waiting for the worker ends now
      this.fail(new FailedPreconditionError("blob writer was aborted", { code: LayerStoreErrorCode.INGEST_CLOSED }));
      await this.#close();
      this.#slot.detach(this.#id);
      this.#hash?.destroy();
    }
    await this.#file.abort();
  }

  /**
   * Tell the worker to drop the file and wait until it writes no more of it:
   * pieces sent before are written or dropped first, so once an abort returns
   * the file (or a hard link to it) holds what it will hold.
   */
  #close(): Promise<void> {
    this.#slot.post({ op: "close", id: this.#id });
    return this.#stopped;
  }

  /** The worker answered `close`, or it is gone: it writes no more of this file. */
  stopped(): void {
    this.#stop();
  }

  /** A piece was written (`written`: the file's length now), the result of finish, or the error that ended the file. */
  answer(m: WriteReply): void {
    if ("closed" in m) this.stopped();
    else if ("error" in m) this.fail(fromWire(m.error));
    else if ("size" in m) {
      const { notTar, ...facts } = m.facts ?? {};
      const scanned = m.facts ? { facts: { ...(facts as ScanFacts), ...(notTar ? { notTar: fromWire(notTar) as ScanFacts["notTar"] } : {}) } } : {};
      this.#finished?.resolve({ digest: m.digest ?? this.#hash!.digest(), size: m.size, ...scanned });
    }
    else {
      this.#written = m.written;
      if (m.piece && !this.#done) this.#spare.push(m.piece);
      this.#pending.shift()?.resolve();
    }
  }

  /** Stop: every waiting write and the finish reject with `err`. */
  fail(err: unknown): void {
    this.#failed ??= err;
    for (const p of this.#pending.splice(0)) p.reject(err);
    this.#finished?.reject(err);
  }

  #check(): void {
    if (this.#done) throw new FailedPreconditionError("blob writer is already committed or aborted", { code: LayerStoreErrorCode.INGEST_CLOSED });
    if (this.#failed !== undefined) throw this.#failed;
  }

  #send(): void {
    const piece = this.#piece!;
    const length = this.#filled;
    this.#piece = undefined;
    this.#filled = 0;
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // seen by whoever waits, or by the next write/flush
    this.#pending.push({ done, resolve, reject });
    this.#hash?.update(piece.subarray(0, length));
    this.#slot.post({ op: "write", id: this.#id, piece: piece.buffer as ArrayBuffer, length }, [piece.buffer as ArrayBuffer]);
  }
}

/** One worker and the writers it serves. */
class Slot {
  readonly worker: Worker;
  readonly writers = new Map<number, PieceWriter>();
  #nextId = 0;

  constructor(onGone: (slot: Slot) => void) {
    this.worker = startWorker(workerScript("write-worker.js", import.meta.url));
    this.worker.unref();
    this.worker.on("message", (m: WriteReply) => this.writers.get(m.id)?.answer(m));
    const gone = (err: unknown) => {
      onGone(this);
      for (const w of this.writers.values()) {
        w.fail(err);
        w.stopped();
      }
      this.writers.clear();
    };
    this.worker.on("error", gone);
    this.worker.on("exit", (code) => gone(new Error(`write worker thread exited with code ${code}`)));
  }

  open(writer: PieceWriter, path: string, scan: LayerScanOptions | undefined, hash: boolean): number {
    const id = this.#nextId++;
    if (this.writers.size === 0) this.worker.ref();
    this.writers.set(id, writer);
    this.post({ op: "open", id, path, hash, ...(scan ? { scan } : {}) });
    return id;
  }

  detach(id: number): void {
    if (this.writers.delete(id) && this.writers.size === 0) this.worker.unref();
  }

  post(m: WriteRequest, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(m, transfer);
  }
}

/** The process's write workers. */
class WritePool {
  readonly #slots: Slot[] = [];
  readonly #max = Math.max(1, Math.min(4, availableParallelism() - 1));

  /** The worker with the fewest open writers (a new one while there are fewer than the maximum and all are busy). */
  attach(): Slot {
    let best = this.#slots[0];
    for (const s of this.#slots) if (s.writers.size < best!.writers.size) best = s;
    if (best && (best.writers.size === 0 || this.#slots.length >= this.#max)) return best;
    const slot = new Slot((gone) => {
      const i = this.#slots.indexOf(gone);
      if (i >= 0) this.#slots.splice(i, 1);
    });
    this.#slots.push(slot);
    return slot;
  }
}

const pool = new WritePool();
