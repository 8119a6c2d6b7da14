/**
 * A layer blob as the bytes of its tar. The first bytes tell the compression
 * (gzip `1f 8b`, zstd `28 b5 2f fd`, else plain; never the media type, which
 * skopeo and podman get wrong). gzip goes through zlib with backpressure;
 * zstd through `@berth/digest`'s decompressor, fed 16 KiB at a time so one
 * step's output stays bounded. Memory does not grow with the layer's size.
 *
 * {@link uncompressedChunks} reads any byte source; {@link uncompressed} is
 * the same as a Node stream over a blob stream (`openUncompressed`).
 * @module
 */
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import {
  type ByteSource,
  chunksOf,
  CorruptDataError,
  createDecompressor,
  DecompressionLimitError,
  detectCompression,
} from "@berth/digest";

/** Options of {@link uncompressedChunks} and {@link uncompressed}. */
export interface UncompressOptions {
  /** Largest uncompressed size accepted (`ERR_DECOMPRESSION_LIMIT`). Default: none. */
  maxUncompressedSize?: number;
  /** What error messages call the blob (`<what>: corrupt gzip data: …`). Default: none (the limit's message says `layer`). */
  what?: string;
}

/** Compressed bytes given to the zstd decompressor per step (its output is yielded between steps). */
const ZSTD_STEP = 16 * 1024;
/** Output chunk size of gunzip (zlib's default is 16 KiB): fewer, larger chunks for the tar reader. */
const GUNZIP_CHUNK = 256 * 1024;

/**
 * The uncompressed bytes of a layer blob (tar, tar+gzip or tar+zstd), chunk
 * by chunk. The source is closed (its iterator returned: a Node stream is
 * destroyed) however the generator ends: read to the end, failed, or
 * returned early by the consumer.
 * @throws CorruptDataError `ERR_CORRUPT_DATA` for broken (or truncated) compressed data;
 *   DecompressionLimitError `ERR_DECOMPRESSION_LIMIT` past `maxUncompressedSize`
 *   (plain blobs count too); the source's own errors as they are.
 */
export async function* uncompressedChunks(source: ByteSource, opts: UncompressOptions = {}): AsyncGenerator<Uint8Array> {
  const max = opts.maxUncompressedSize ?? Number.POSITIVE_INFINITY;
  const prefix = opts.what === undefined ? "" : `${opts.what}: `;
  let total = 0;
  const count = (c: Uint8Array): Uint8Array => {
    total += c.length;
    if (total > max) {
      throw new DecompressionLimitError(`${opts.what ?? "layer"}: decompresses to more than ${max} bytes`, { details: { limit: max } });
    }
    return c;
  };
  const it = chunksOf(source)[Symbol.asyncIterator]();
  try {
    let head: Uint8Array = new Uint8Array(0);
    while (head.length < 4) {
      const r = await it.next();
      if (r.done) break;
      head = head.length ? concat(head, r.value) : r.value;
    }
    async function* rest(): AsyncGenerator<Uint8Array> {
      if (head.length) yield head;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    }
    const kind = detectCompression(head);
    if (kind === "none") {
      for await (const c of rest()) yield count(c);
    } else if (kind === "gzip") {
      const gz = createGunzip({ chunkSize: GUNZIP_CHUNK });
      const input = Readable.from(rest());
      input.on("error", (err) => gz.destroy(err));
      input.pipe(gz);
      try {
        for await (const c of gz) yield count(c as Buffer);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code?.startsWith("Z_")) {
          throw new CorruptDataError(`${prefix}corrupt gzip data: ${(err as Error).message}`, { cause: err });
        }
        throw err;
      } finally {
        input.destroy();
        gz.destroy();
      }
    } else {
      // the decompressor's errors are CorruptDataError already ("corrupt zstd data: …", a truncated stream too)
      let out: Uint8Array[] = [];
      const d = await createDecompressor("zstd", (c) => {
        out.push(c);
      });
      try {
        for await (const c of rest()) {
          for (let i = 0; i < c.length; i += ZSTD_STEP) {
            await d.push(c.subarray(i, i + ZSTD_STEP));
            const ready = out;
            out = [];
            for (const o of ready) yield count(o);
          }
        }
        await d.end();
        for (const o of out) yield count(o);
      } catch (err) {
        d.abort();
        throw err;
      }
    }
  } finally {
    await it.return?.(undefined);
  }
}

/**
 * {@link uncompressedChunks} of a blob stream as a Node stream (of Buffers).
 * The blob stream (an open file) is destroyed when the returned stream
 * closes, however it ends: read to the end, failed, or destroyed — also
 * before its first read, when the generator never started.
 * @throws (as stream errors) what {@link uncompressedChunks} throws
 */
export function uncompressed(blob: Readable, opts: UncompressOptions = {}): Readable {
  const out = Readable.from(uncompressedChunks(blob, opts), { objectMode: false });
  out.once("close", () => blob.destroy());
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
