/**
 * Archive sources: a file path, a Node Readable, a web ReadableStream or any
 * (async) iterable of bytes; a whole-archive gzip (which `docker load`
 * accepts) is detected from the magic bytes and decompressed on the fly.
 * @module
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { type ByteSource, CorruptDataError, chunksOf } from "@berth/digest";
import { decompressionLimit, truncated } from "./errors.js";

/** Anything `load` reads from: a file path or a byte stream. */
export type ArchiveSource = string | ByteSource;

/** Chunk size used for file sources (large chunks keep per-chunk overhead low). */
export const READ_CHUNK = 1 << 20;

/** Bytes of a source, as chunks. */
export function sourceChunks(source: ArchiveSource): AsyncIterable<Uint8Array> {
  if (typeof source === "string") return chunksOf(createReadStream(source, { highWaterMark: READ_CHUNK }));
  return chunksOf(source);
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
    await it.return?.();
  }
}
