/**
 * DiffID of a compressed layer blob, computed while the blob streams into the
 * store. The store's writer already hashes the compressed bytes (the blob
 * digest), so for gzip only the decompressed bytes are hashed here (node:zlib);
 * zstd goes through `@berth/digest`'s layer digester.
 * @module
 */
import { createGunzip } from "node:zlib";
import { type Digest, CorruptDataError, createLayerDigester, sha256 } from "@berth/digest";
import { decompressionLimit } from "./errors.js";

/** Push-style DiffID computation. */
export interface DiffDigester {
  push(chunk: Uint8Array): Promise<void>;
  finish(): Promise<{ diffID: Digest; uncompressedSize: number }>;
  abort(): void;
}

/** A DiffID digester for a blob compressed with `compression`. */
export function createDiffDigester(compression: "gzip" | "zstd", maxUncompressedSize: number): DiffDigester {
  if (compression === "zstd") {
    const d = createLayerDigester({ maxUncompressedSize });
    return {
      push: (c) => d.push(c),
      async finish() {
        const r = await d.finish();
        return { diffID: r.diffID, uncompressedSize: r.uncompressedSize };
      },
      abort: () => d.abort(),
    };
  }
  const hash = sha256.create();
  const gz = createGunzip({ chunkSize: 256 * 1024 });
  let size = 0;
  let failure: unknown;
  gz.on("data", (c: Buffer) => {
    size += c.length;
    if (size > maxUncompressedSize) {
      failure ??= decompressionLimit("gzip layer", maxUncompressedSize);
      gz.destroy();
      return;
    }
    hash.update(c);
  });
  const ended = new Promise<void>((resolve, reject) => {
    gz.once("end", resolve);
    gz.once("error", (err) =>
      reject(failure ?? new CorruptDataError(`corrupt gzip data: ${err.message}`, { cause: err })),
    );
    gz.once("close", () => {
      if (failure) reject(failure);
    });
  });
  ended.catch(() => {});
  return {
    async push(chunk) {
      if (failure) throw failure;
      if (!gz.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            gz.off("drain", done);
            gz.off("close", done);
            resolve();
          };
          gz.once("drain", done);
          gz.once("close", done);
        });
      }
      if (failure) throw failure;
    },
    async finish() {
      gz.end();
      await ended;
      if (failure) throw failure;
      return { diffID: hash.digest(), uncompressedSize: size };
    },
    abort() {
      gz.destroy();
      hash.destroy();
    },
  };
}
