import { Decompress as ZstdDecompress } from "fzstd";
import { BerthError, CorruptDataError } from "./errors.js";

/** Compression of a layer blob, detected from its first bytes. */
export type Compression = "none" | "gzip" | "zstd";

/**
 * Detect compression from magic bytes (gzip `1f 8b`, zstd `28 b5 2f fd`), never
 * from a file name or media type: skopeo and podman label plain tars `+gzip`.
 */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

/** Push-style streaming decompressor: output goes to the `onData` callback. */
export interface Decompressor {
  push(chunk: Uint8Array): Promise<void>;
  end(): Promise<void>;
  /** Stop early (after an error elsewhere); releases native resources. */
  abort(): void;
}

type Sink = (chunk: Uint8Array) => void;

interface ZlibLike {
  createGunzip(options?: import("node:zlib").ZlibOptions): import("node:zlib").Gunzip;
}

let zlibPromise: Promise<ZlibLike | undefined> | undefined;
function loadZlib(): Promise<ZlibLike | undefined> {
  zlibPromise ??= (async () => {
    const isNode = typeof process !== "undefined" && process.versions?.node !== undefined;
    if (!isNode) return undefined;
    const spec = "node:zlib";
    return (await import(/* @vite-ignore */ spec)) as ZlibLike;
  })();
  return zlibPromise;
}

function corrupt(kind: string, cause: unknown): CorruptDataError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new CorruptDataError(`corrupt ${kind} data: ${why}`, { cause });
}

async function nodeGunzip(zlib: ZlibLike, onData: Sink): Promise<Decompressor> {
  // 256 KiB output chunks: a quarter of the callbacks and hash updates of zlib's 16 KiB default
  const gz = zlib.createGunzip({ chunkSize: 256 * 1024 });
  let failure: unknown;
  gz.on("data", (c: Buffer) => {
    try {
      onData(c);
    } catch (err) {
      failure ??= err;
      gz.destroy();
    }
  });
  const ended = new Promise<void>((resolve, reject) => {
    gz.once("end", resolve);
    gz.once("error", (err) => reject(failure ?? corrupt("gzip", err)));
    gz.once("close", () => (failure ? reject(failure) : undefined));
  });
  ended.catch(() => {});
  return {
    async push(chunk) {
      if (failure) throw failure;
      if (!gz.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = () => {
            gz.off("error", onErr);
            gz.off("close", onErr);
            resolve();
          };
          const onErr = (err?: unknown) => {
            gz.off("drain", onDrain);
            gz.off("error", onErr);
            gz.off("close", onErr);
            reject(failure ?? corrupt("gzip", err ?? "stream closed"));
          };
          gz.once("drain", onDrain);
          gz.once("error", onErr);
          gz.once("close", onErr);
        });
      }
      if (failure) throw failure;
    },
    async end() {
      gz.end();
      await ended;
      if (failure) throw failure;
    },
    abort() {
      gz.destroy();
    },
  };
}

function webGunzip(onData: Sink): Decompressor {
  const ds = new DecompressionStream("gzip");
  const writer = ds.writable.getWriter();
  const reader = ds.readable.getReader();
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onData(value);
    }
  })();
  pump.catch(() => {});
  return {
    async push(chunk) {
      try {
        await writer.write(chunk as Uint8Array<ArrayBuffer>);
      } catch (err) {
        throw corrupt("gzip", err);
      }
    },
    async end() {
      try {
        await writer.close();
        await pump;
      } catch (err) {
        throw err instanceof CorruptDataError ? err : corrupt("gzip", err);
      }
    },
    abort() {
      writer.abort().catch(() => {});
    },
  };
}

function zstd(onData: Sink): Decompressor {
  let finished = false;
  const d = new ZstdDecompress((chunk, final) => {
    if (chunk.length) onData(chunk);
    if (final) finished = true;
  });
  return {
    async push(chunk) {
      try {
        d.push(chunk);
      } catch (err) {
        if (err instanceof BerthError) throw err;
        throw corrupt("zstd", err);
      }
    },
    async end() {
      try {
        d.push(new Uint8Array(0), true);
      } catch (err) {
        if (err instanceof BerthError) throw err;
        throw corrupt("zstd", err);
      }
      if (!finished) throw corrupt("zstd", "truncated stream");
    },
    abort() {},
  };
}

/** A streaming decompressor for `compression`; `none` passes chunks through. */
export async function createDecompressor(compression: Compression, onData: Sink): Promise<Decompressor> {
  switch (compression) {
    case "none":
      return {
        async push(chunk) {
          onData(chunk);
        },
        async end() {},
        abort() {},
      };
    case "gzip": {
      const zlib = await loadZlib();
      return zlib ? nodeGunzip(zlib, onData) : webGunzip(onData);
    }
    case "zstd":
      return zstd(onData);
  }
}
