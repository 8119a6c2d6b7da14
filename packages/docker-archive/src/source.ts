/**
 * Archive sources: a file path, a Node Readable, a web ReadableStream or any
 * (async) iterable of bytes; a whole-archive gzip (which `docker load`
 * accepts) is detected from the magic bytes and decompressed on the fly.
 * @module
 */
import { open } from "node:fs/promises";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { type ByteSource, CorruptDataError, chunksOf } from "@berth/digest";
import { decompressionLimit, truncated } from "./errors.js";

/** Anything `load` reads from: a file path or a byte stream. */
export type ArchiveSource = string | ByteSource;

/** Chunk size used for file sources (large chunks keep per-chunk overhead low). */
export const READ_CHUNK = 1 << 20;
/** Reads of a file source kept in flight. */
const READ_AHEAD = 2;

/** Bytes of a source, as chunks. */
export function sourceChunks(source: ArchiveSource): AsyncIterable<Uint8Array> {
  if (typeof source === "string") return new FileSource(source);
  return chunksOf(source);
}

/** What a skipped range is yielded as (made on the first skip, not at import). */
let zeros: Uint8Array | undefined;

/**
 * The chunks of a file, with {@link READ_AHEAD} reads in flight: the next
 * chunk is already on its way while the current one is parsed and hashed
 * (measured on a 1.1 GB archive: ~7% faster than one read at a time; more
 * reads in flight compete with the store's writes for the thread pool).
 *
 * A reader that does not need a range (an entry whose body a worker thread
 * reads itself) says so with {@link skipTo}: the range is then yielded as
 * zeros without reading it, so positions stay those of the file. The file's
 * size is taken when it is opened; a file that shrinks ends early.
 */
export class FileSource implements AsyncIterable<Uint8Array> {
  readonly path: string;
  /** Position of the next chunk to yield (or being awaited). */
  #next = 0;
  /** End of the chunk being awaited, if one is. */
  #pendingEnd: number | undefined;
  /** Reads queued after it, in order. */
  #queue: Array<Promise<Uint8Array>> = [];
  /** Where the next queued read starts. */
  #readAt = 0;
  /** Yield zeros up to here instead of reading. */
  #zerosUntil = 0;
  /** Reads dropped by skipTo, still to settle before the file closes. */
  readonly #dropped: Array<Promise<unknown>> = [];

  constructor(path: string) {
    this.path = path;
  }

  /** The bytes before `pos` are not needed: yield zeros for those not read yet. */
  skipTo(pos: number): void {
    const base = this.#pendingEnd ?? this.#next;
    if (pos <= base) return;
    this.#dropped.push(...this.#queue.map((p) => p.catch(() => {})));
    this.#queue = [];
    this.#readAt = pos;
    this.#zerosUntil = pos;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    const fh = await open(this.path, "r");
    try {
      const size = (await fh.stat()).size;
      const more = () => {
        while (this.#queue.length < READ_AHEAD && this.#readAt < size) {
          const at = this.#readAt;
          const n = Math.min(READ_CHUNK, size - at);
          this.#readAt += n;
          this.#queue.push(fh.read(Buffer.allocUnsafeSlow(n), 0, n, at).then((r) => r.buffer.subarray(0, r.bytesRead)));
        }
      };
      while (this.#next < size) {
        if (this.#next < this.#zerosUntil) {
          const n = Math.min(READ_CHUNK, this.#zerosUntil - this.#next, size - this.#next);
          this.#next += n;
          zeros ??= new Uint8Array(READ_CHUNK);
          yield zeros.subarray(0, n);
          continue;
        }
        more();
        const read = this.#queue.shift()!;
        const end = Math.min(this.#next + READ_CHUNK, size);
        this.#pendingEnd = end;
        const c = await read;
        this.#pendingEnd = undefined;
        this.#next += c.length;
        if (c.length) yield c;
        if (this.#next < end) return; // the file shrank
      }
    } finally {
      // Early return or an error: let the reads still in flight settle, then close.
      await Promise.allSettled([...this.#queue, ...this.#dropped]);
      await fh.close();
    }
  }
}

/** What {@link decompressArchive} learned. */
export interface ArchiveSourceInfo {
  /** Compression of the archive as a whole. */
  compression: "none" | "gzip";
  /** Bytes read from the source (compressed bytes for a gzip'd archive). */
  bytesRead: number;
}

/**
 * Pass chunks through, gunzipping them when the stream starts with the gzip
 * magic. `maxSize` bounds the decompressed size (`ERR_DECOMPRESSION_LIMIT`).
 */
export async function* decompressArchive(
  chunks: AsyncIterable<Uint8Array>,
  info: ArchiveSourceInfo,
  maxSize?: number,
): AsyncGenerator<Uint8Array> {
  const it = chunks[Symbol.asyncIterator]();
  try {
    yield* passOrGunzip(it, info, maxSize);
  } finally {
    // Also on an early return (the tar reader stops at the end-of-archive
    // block, before the source's trailing padding): release the source, so a
    // file source closes its file now instead of at garbage collection.
    await it.return?.();
  }
}

async function* passOrGunzip(
  it: AsyncIterator<Uint8Array>,
  info: ArchiveSourceInfo,
  maxSize: number | undefined,
): AsyncGenerator<Uint8Array> {
  let first: Uint8Array | undefined;
  // Collect at least 2 bytes to look at the magic.
  while (first === undefined || first.length < 2) {
    const r = await it.next();
    if (r.done) break;
    info.bytesRead += r.value.length;
    if (first === undefined) first = r.value;
    else {
      const j = new Uint8Array(first.length + r.value.length);
      j.set(first);
      j.set(r.value, first.length);
      first = j;
    }
  }
  if (first === undefined) return;
  const head = first;
  const rest = (async function* () {
    yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      info.bytesRead += r.value.length;
      yield r.value;
    }
  })();
  if (!(head[0] === 0x1f && head[1] === 0x8b)) {
    yield* rest;
    return;
  }
  info.compression = "gzip";
  const input = Readable.from(rest, { objectMode: false });
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  input.on("error", (err) => gunzip.destroy(err));
  input.pipe(gunzip);
  let total = 0;
  try {
    for await (const c of gunzip as AsyncIterable<Buffer>) {
      total += c.length;
      if (maxSize !== undefined && total > maxSize) throw decompressionLimit("gzip'd archive", maxSize);
      yield c;
    }
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "Z_BUF_ERROR") throw truncated("gzip stream ends early", { cause: err });
    if (typeof code === "string" && code.startsWith("Z_"))
      throw new CorruptDataError(`corrupt gzip'd archive: ${(err as Error).message}`, { cause: err });
    throw err;
  } finally {
    input.destroy();
    gunzip.destroy();
  }
}
