/**
 * Worker threads for `load` of an archive file: each large entry is read
 * from the file at its offset, hashed, scanned ({@link LayerScan}) and written
 * into an ingest file by a worker of its own, so the entries of an archive
 * are hashed in parallel while the calling thread reads on. SHA-256 of one
 * stream cannot be split, but an archive has several layers.
 *
 * Why a worker does its own reads and writes, synchronously: a 512 KiB
 * buffer that is read into, hashed and written out stays in the core's
 * cache, and no chunk crosses threads. Measured on this project's 1.1 GB
 * bench archive: copying it through 512 KiB buffers costs a third of the
 * system time of 1 MiB ones (the L2 cache here is 1 MiB per core).
 * @module
 */
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import type { BerthError, Digest } from "@berth/digest";
import type { ScanFacts } from "@berth/layer-store/scan";
import { fromWire, startWorker, type WireError, workerScript } from "@berth/layer-store/threads";

/** One entry for a worker: `size` bytes at `offset` of `file`, into the ingest file `path`. */
export interface IngestJob {
  file: string;
  offset: number;
  size: number;
  /** Ingest file to write (exists, empty). */
  path: string;
  /** Archive entry name, for messages. */
  name: string;
  maxLayer: number;
}

/** A job as a worker receives it: the pool's stop flag (non-zero: stop) comes with each. */
export type IngestMessage = IngestJob & { id: number; cancel: Int32Array };

/** What a worker found: the blob's digest and the scan's facts. */
export interface IngestDone {
  digest: Digest;
  facts: ScanFacts;
}

/** Message from a worker. */
type Reply = { id: number; digest: Digest; facts: Omit<ScanFacts, "notTar"> & { notTar?: WireError } } | { id: number; error: WireError };

/** Worker threads by default: one per core, at most 4. */
export function defaultThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** The smallest archive entry a worker takes by default (smaller ones are read on the calling thread). */
export const WORKER_MIN_ENTRY = 8 << 20;

/**
 * Workers no load is using, kept for the next one (a load's workers cost
 * ~35–60 ms each to start, a tenth of a 1 GB load here). Idle workers do not
 * hold the process open, and at most {@link defaultThreads} are kept.
 */
const idle: Worker[] = [];

function spawnWorker(): Worker {
  return startWorker(workerScript("ingest-worker.js", import.meta.url));
}

/** Keep `worker` for the next load (or end it when enough are kept). */
function park(worker: Worker): void {
  worker.removeAllListeners();
  if (idle.length >= defaultThreads()) {
    void worker.terminate();
    return;
  }
  const drop = () => {
    const i = idle.indexOf(worker);
    if (i >= 0) idle.splice(i, 1);
  };
  worker.on("error", drop);
  worker.on("exit", drop);
  worker.unref();
  idle.push(worker);
}

/**
 * Start the load workers now, for a caller that knows the load of an archive
 * file of `fileSize` bytes is coming (none for a file too small to have an
 * entry for them): their start-up then overlaps whatever it does first, such
 * as opening the store. The next `load` of a file takes them; until then they
 * do not hold the process open.
 */
export function warmLoadWorkers(fileSize = Number.POSITIVE_INFINITY): void {
  if (fileSize < WORKER_MIN_ENTRY) return;
  while (idle.length < defaultThreads()) park(spawnWorker());
}

interface Slot {
  worker: Worker;
  job: { id: number; resolve: (d: IngestDone) => void; reject: (e: unknown) => void } | undefined;
}

interface Queued {
  job: Omit<IngestJob, "path">;
  prepare: () => Promise<string>;
  resolve: (d: IngestDone) => void;
  reject: (e: unknown) => void;
}

/**
 * Up to `threads` workers, taken from the idle ones or started, by
 * {@link warm} or as jobs arrive. Queued jobs run largest first, so the last
 * to finish (whose fsync nothing overlaps) are small. {@link cancel} makes the
 * workers stop their current job at the next chunk (they close their files
 * themselves) and refuses the queued ones; {@link close} gives the idle
 * workers back for the next load and ends the others.
 */
export class IngestPool {
  readonly #threads: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Queued[] = [];
  /** Shared with the workers (sent with each job): non-zero means stop. */
  readonly #cancel = new Int32Array(new SharedArrayBuffer(4));
  #nextId = 0;
  #cancelled: unknown;

  constructor(threads: number) {
    this.#threads = Math.max(1, threads);
  }

  /** Start the workers now (their start-up then overlaps the caller's). */
  warm(): void {
    while (this.#slots.length < this.#threads) this.#spawn();
  }

  /**
   * Run `job` on a worker; `prepare` gives the ingest file to write, called
   * when a worker is free (so queued jobs hold no open files).
   */
  run(job: Omit<IngestJob, "path">, prepare: () => Promise<string>): Promise<IngestDone> {
    if (this.#cancelled !== undefined) return Promise.reject(this.#cancelled);
    return new Promise<IngestDone>((resolve, reject) => {
      this.#queue.push({ job, prepare, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length) {
      let slot = this.#slots.find((s) => !s.job);
      if (!slot && this.#slots.length < this.#threads) slot = this.#spawn();
      if (!slot) return;
      let k = 0;
      for (let i = 1; i < this.#queue.length; i++) if (this.#queue[i]!.job.size > this.#queue[k]!.job.size) k = i;
      const { job, prepare, resolve, reject } = this.#queue.splice(k, 1)[0]!;
      const id = this.#nextId++;
      const taken = { id, resolve, reject };
      slot.job = taken;
      const free = slot;
      prepare().then(
        (path) => free.worker.postMessage({ id, ...job, path, cancel: this.#cancel }),
        (err: unknown) => {
          if (free.job === taken) free.job = undefined;
          reject(err);
          this.#dispatch();
        },
      );
    }
  }

  #spawn(): Slot {
    const worker = idle.pop() ?? spawnWorker();
    worker.removeAllListeners();
    worker.ref();
    const slot: Slot = { worker, job: undefined };
    worker.on("message", (m: Reply) => {
      const job = slot.job;
      if (!job || job.id !== m.id) return;
      slot.job = undefined;
      if ("error" in m) job.reject(fromWire(m.error));
      else {
        const { notTar, ...facts } = m.facts;
        job.resolve({ digest: m.digest, facts: notTar ? { ...facts, notTar: fromWire(notTar) as BerthError } : facts });
      }
      this.#dispatch();
    });
    const fail = (err: unknown) => {
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots.splice(i, 1);
      slot.job?.reject(err);
      slot.job = undefined;
      this.#dispatch();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`load's worker thread exited with code ${code}`)));
    this.#slots.push(slot);
    return slot;
  }

  /** Stop: running jobs end at their next chunk, queued ones fail with `reason`. */
  cancel(reason: unknown): void {
    this.#cancelled ??= reason;
    Atomics.store(this.#cancel, 0, 1);
    for (const q of this.#queue.splice(0)) q.reject(reason);
  }

  /** Give the workers back for the next load; one still in a job (a cancelled load) is ended. */
  async close(): Promise<void> {
    const slots = this.#slots.splice(0);
    await Promise.all(slots.map((s) => (s.job ? s.worker.terminate() : park(s.worker))));
  }
}
