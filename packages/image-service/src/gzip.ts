/**
 * gzip for pushing layers, made as pigz makes it: the input is cut into
 * blocks that are compressed side by side, each primed with the 32 KiB
 * before it as its dictionary, so the output is one ordinary gzip member,
 * within a fraction of a percent of a single zlib stream's size. How a block
 * is compressed (random-looking ones stored, salted text with runs only) is
 * `gzip-block.ts`.
 *
 * The blocks are compressed and checksummed on worker threads (one per core,
 * shared by every push of the process), which send each block's buffer back
 * to be read into again: the calling thread only reads the layer, joins the
 * CRCs and passes the output on (in a push it also hashes and sends it).
 * With zlib's own thread pool the calling thread was the bottleneck of a
 * push — ~91 % busy, a third of it setting up zlib streams, CRC-32, sampling
 * and the garbage of a fresh 1 MiB buffer per block.
 *
 * The output depends only on the input and the level: the same layer always
 * gives the same digest, which the blob-info cache relies on.
 * @module
 */
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { fromWire, startWorker, type WireError, workerScript } from "@berth/layer-store/threads";
import { crc32Combine } from "./gzip-block.js";

/**
 * Bytes per block. 1 MiB rather than 256 KiB: each block is a zlib stream of
 * its own, and the share per block (a stream to set up, its output to
 * collect) made 256 KiB blocks cost 15 % more wall time in a push of the
 * registry bench's image (measured with zlib's thread pool, before the
 * workers); 2 MiB was no faster and held more memory.
 */
const BLOCK = 1 << 20;
/** Deflate's window: what a block may refer back to. */
const WINDOW = 32 << 10;
/**
 * Blocks in flight per stream. A push sends four layers at once, so two each
 * keep one worker per core busy; four each only held more memory (peak RSS of
 * the registry bench's push 185 → 210 MiB, no faster).
 */
const PARALLEL = 2;
/** Worker threads at most (one per core up to this; zlib's thread pool, which did this work before, has four). */
const MAX_THREADS = 4;
/** Block buffers kept for reuse (returned by the workers). */
const SPARE_BLOCKS = 8;

/** gzip header: no name, no time, OS unix (as zlib writes it). */
const HEADER = Uint8Array.of(0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03);

/** A block for a worker. */
export interface GzipJob {
  id: number;
  block: Uint8Array;
  /** The 32 KiB before the block (a copy), its dictionary. */
  before: Uint8Array | undefined;
  level: number;
}

/** A worker's answer: the compressed block and its input's CRC-32, or an error; the block's buffer comes back either way. */
export type GzipReply = { id: number; block: Uint8Array } & ({ out: Uint8Array; crc: number } | { error: WireError });

interface Compressed {
  out: Uint8Array;
  crc: number;
  length: number;
}

interface Thread {
  worker: Worker;
  jobs: Map<number, { length: number; resolve: (c: Compressed) => void; reject: (e: unknown) => void }>;
}

const threads: Thread[] = [];
const spare: ArrayBuffer[] = [];
let nextId = 0;

/** A block buffer: a spare one, else new. */
function blockBuffer(): Uint8Array {
  return new Uint8Array(spare.pop() ?? new ArrayBuffer(BLOCK));
}

/** Start a worker; it holds the process open only while it has jobs. */
function spawn(): Thread {
  // a small young generation: the worker makes few JS objects, and frequent scavenges free the
  // buffers it has handed over sooner (peak RSS of the registry bench's push 198 → 185 MiB)
  const worker = startWorker(workerScript("gzip-worker.js", import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 2 } });
  worker.unref();
  const t: Thread = { worker, jobs: new Map() };
  worker.on("message", (m: GzipReply) => {
    recycle(m.block);
    const job = t.jobs.get(m.id);
    if (!job) return;
    t.jobs.delete(m.id);
    if (t.jobs.size === 0) worker.unref();
    if ("error" in m) job.reject(fromWire(m.error));
    else job.resolve({ out: m.out, crc: m.crc, length: job.length });
  });
  const fail = (err: unknown) => {
    const i = threads.indexOf(t);
    if (i >= 0) threads.splice(i, 1);
    for (const job of t.jobs.values()) job.reject(err);
    t.jobs.clear();
  };
  worker.on("error", fail);
  worker.on("exit", (code) => fail(new Error(`gzip worker thread exited with code ${code}`)));
  threads.push(t);
  return t;
}

/** Compress `block` on the least busy worker (started up to one per core). `block`'s buffer is handed over. */
function compressOffThread(block: Uint8Array, before: Uint8Array | undefined, level: number): Promise<Compressed> {
  let t = threads.reduce<Thread | undefined>((best, x) => (!best || x.jobs.size < best.jobs.size ? x : best), undefined);
  if (!t || (t.jobs.size > 0 && threads.length < Math.min(MAX_THREADS, availableParallelism()))) t = spawn();
  const thread = t;
  const id = nextId++;
  return new Promise<Compressed>((resolve, reject) => {
    if (thread.jobs.size === 0) thread.worker.ref();
    thread.jobs.set(id, { length: block.length, resolve, reject });
    const job: GzipJob = { id, block, before, level };
    thread.worker.postMessage(job, [block.buffer as ArrayBuffer]);
  });
}

/** Give a block buffer back for reuse. */
function recycle(buf: Uint8Array): void {
  if (buf.buffer.byteLength === BLOCK && spare.length < SPARE_BLOCKS) spare.push(buf.buffer as ArrayBuffer);
}

/** Reads bytes at a position into a buffer: a store blob's `ContentReader`. */
export interface PositionalReader {
  /** Read up to `into.byteLength` bytes at `position`; resolves with the count (0 only at the end). */
  read(into: Uint8Array, position: number): Promise<number>;
}

/** Whether `source` is a reader rather than chunks to iterate (a Node stream has a `read` method too). */
function isReader(source: AsyncIterable<Uint8Array> | PositionalReader): source is PositionalReader {
  return !(Symbol.asyncIterator in source) && !(Symbol.iterator in source);
}

/** The input re-cut into blocks of {@link BLOCK} bytes (the last may be shorter), in reused buffers. */
async function* streamBlocks(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let buf = blockBuffer();
  let fill = 0;
  for await (const chunk of source) {
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(BLOCK - fill, chunk.length - at);
      buf.set(chunk.subarray(at, at + take), fill);
      fill += take;
      at += take;
      if (fill === BLOCK) {
        yield buf;
        buf = blockBuffer();
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
  else recycle(buf);
}

/** A reader's bytes from position 0 in blocks, read straight into reused buffers (no chunk to allocate and copy). */
async function* readerBlocks(reader: PositionalReader): AsyncGenerator<Uint8Array> {
  for (let pos = 0; ; ) {
    const buf = blockBuffer();
    let fill = 0;
    while (fill < BLOCK) {
      const n = await reader.read(buf.subarray(fill), pos + fill);
      if (n === 0) break;
      fill += n;
    }
    pos += fill;
    if (fill === 0) {
      recycle(buf);
      return;
    }
    yield fill === BLOCK ? buf : buf.subarray(0, fill);
    if (fill < BLOCK) return;
  }
}

/**
 * gzip `source` as the module doc describes, streaming: at most a few blocks
 * are held at once. `source`: a stream, or a reader of a file (read from its
 * start, into the blocks themselves). `level` is zlib's (default 6, as docker
 * and BuildKit).
 */
export async function* parallelGzip(source: AsyncIterable<Uint8Array> | PositionalReader, level = 6): AsyncGenerator<Uint8Array> {
  yield HEADER;
  let crc = 0;
  let size = 0;
  const inFlight: Promise<Compressed>[] = [];
  let before: Uint8Array | undefined;
  const done = (c: Compressed) => {
    crc = crc32Combine(crc, c.crc, c.length);
    size = (size + c.length) % 2 ** 32;
    return c.out;
  };
  for await (const block of isReader(source) ? readerBlocks(source) : streamBlocks(source)) {
    // the dictionary of the next block, copied before this one's buffer goes to a worker
    const next = block.slice(Math.max(0, block.length - WINDOW));
    const pending = compressOffThread(block, before, level);
    pending.catch(() => undefined); // awaited in order below; a failure is not also unhandled
    inFlight.push(pending);
    before = next;
    if (inFlight.length >= PARALLEL) yield done(await inFlight.shift()!);
  }
  while (inFlight.length > 0) yield done(await inFlight.shift()!);
  // the final block (empty, stored), then CRC-32 and size, little-endian
  const trailer = new Uint8Array(13);
  trailer.set([0x01, 0x00, 0x00, 0xff, 0xff]);
  const view = new DataView(trailer.buffer);
  view.setUint32(5, crc, true);
  view.setUint32(9, size, true);
  yield trailer;
}
