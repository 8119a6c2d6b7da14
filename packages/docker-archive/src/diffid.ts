/**
 * DiffID of a compressed layer blob, computed while the blob streams into the
 * store. The store's writer already hashes the compressed bytes (the blob
 * digest), so only the decompressed bytes are hashed here, through
 * `@berth/digest`'s streaming decompressor (gzip via node:zlib, zstd via fzstd).
 * @module
 */
import { createDecompressor, type Decompressor, type Digest, sha256 } from "@berth/digest";
import { decompressionLimit } from "./errors.js";

/** Push-style DiffID computation. */
export interface DiffDigester {
  push(chunk: Uint8Array): Promise<void>;
  finish(): Promise<{ diffID: Digest; uncompressedSize: number }>;
  abort(): void;
}

/** A DiffID digester for a blob compressed with `compression`. */
export function createDiffDigester(
  compression: "gzip" | "zstd",
  maxUncompressedSize: number,
  onUncompressed?: (chunk: Uint8Array) => void,
): DiffDigester {
  const hash = sha256.create();
  let size = 0;
  let decompressor: Decompressor | undefined;
  const ready = createDecompressor(compression, (chunk) => {
    size += chunk.length;
    if (size > maxUncompressedSize) throw decompressionLimit(`${compression} layer`, maxUncompressedSize);
    hash.update(chunk);
    onUncompressed?.(chunk);
  }).then((d) => (decompressor = d));
  ready.catch(() => {});
  return {
    async push(chunk) {
      await (decompressor ?? (await ready)).push(chunk);
    },
    async finish() {
      await (decompressor ?? (await ready)).end();
      return { diffID: hash.digest(), uncompressedSize: size };
    },
    abort() {
      decompressor?.abort();
      hash.destroy();
    },
  };
}
