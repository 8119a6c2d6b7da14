/**
 * A stored blob as a {@link BlobReader}: positional reads on an open file
 * descriptor of `blobs/sha256/<hex>` (the HTTP layer reads with its own large
 * buffers), so memory does not grow with the blob.
 * @module
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { type Digest, digestHex } from "@berth/digest";
import type { Store } from "@berth/image-store";
import type { BlobReader } from "./types.js";

/**
 * Open blob `digest` of the store. A store on disk reads the blob file; the
 * memory store's blob is read whole (memory stores hold everything in memory anyway).
 * @throws what `notFound` makes when the blob is gone
 */
export async function openBlobReader(store: Store, digest: Digest, notFound: () => Error): Promise<BlobReader> {
  if (!store.root.startsWith("memory:")) {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path.join(store.root, "blobs", "sha256", digestHex(digest)), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw notFound();
      throw err;
    }
    const size = (await fh.stat()).size;
    let closed = false;
    return {
      digest,
      size,
      read: async (into, position) => (await fh.read(into, 0, into.byteLength, position)).bytesRead,
      close: async () => {
        if (closed) return;
        closed = true;
        await fh.close();
      },
    };
  }
  const bytes = await store.content.readBytes(digest, Number.MAX_SAFE_INTEGER).catch(() => {
    throw notFound();
  });
  return {
    digest,
    size: bytes.byteLength,
    read: async (into, position) => {
      const n = Math.max(0, Math.min(into.byteLength, bytes.byteLength - position));
      into.set(bytes.subarray(position, position + n));
      return n;
    },
    close: async () => {},
  };
}
