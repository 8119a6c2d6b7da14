import { pipeline, Readable, Transform } from "node:stream";
import { createGunzip } from "node:zlib";
import { CorruptDataError, detectCompression } from "@berth/digest";
import { Decompress as ZstdDecompress } from "fzstd";

/** A Transform that decompresses zstd (fzstd, streaming). */
function zstdTransform(): Transform {
  let t!: Transform;
  let finished = false;
  const d = new ZstdDecompress((chunk, final) => {
    if (chunk.length) t.push(chunk);
    if (final) finished = true;
  });
  t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        d.push(chunk);
        cb();
      } catch (err) {
        cb(new CorruptDataError(`corrupt zstd data: ${(err as Error).message}`, { cause: err }));
      }
    },
    flush(cb) {
      try {
        d.push(new Uint8Array(0), true);
        if (!finished) throw new Error("truncated stream");
        cb();
      } catch (err) {
        cb(new CorruptDataError(`corrupt zstd data: ${(err as Error).message}`, { cause: err }));
      }
    },
  });
  return t;
}

/**
 * Wrap a blob stream so that it yields the uncompressed tar: the first bytes
 * decide (gzip `1f 8b`, zstd `28 b5 2f fd`, else plain). Corrupt compressed
 * data fails the stream with `CorruptDataError` (`ERR_CORRUPT_DATA`). The
 * blob stream (an open file) is destroyed when the returned stream closes,
 * however it ends: read to the end, failed, or destroyed — also before its
 * first read, when the generator below never started.
 */
export function uncompressed(blob: Readable): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    const it = blob[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let head = Buffer.alloc(0);
    while (head.length < 4) {
      const r = await it.next();
      if (r.done) break;
      head = Buffer.concat([head, r.value]);
    }
    async function* rest(): AsyncGenerator<Buffer> {
      if (head.length) yield head;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    }
    const kind = detectCompression(head);
    if (kind === "none") {
      yield* rest();
      return;
    }
    const t = kind === "gzip" ? createGunzip() : zstdTransform();
    pipeline(Readable.from(rest()), t, () => {});
    try {
      for await (const chunk of t) yield chunk as Buffer;
    } catch (err) {
      if (err instanceof CorruptDataError) throw err;
      if ((err as NodeJS.ErrnoException).code?.startsWith("Z_")) {
        throw new CorruptDataError(`corrupt ${kind} data: ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
  }
  const out = Readable.from(gen(), { objectMode: false });
  out.once("close", () => blob.destroy());
  return out;
}
