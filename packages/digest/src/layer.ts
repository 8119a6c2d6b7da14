import { type Compression, createDecompressor, type Decompressor, detectCompression } from "./decompress.js";
import type { Digest } from "./digest.js";
import { DecompressionLimitError } from "./errors.js";
import { type ByteSource, chunksOf } from "./stream.js";
import type { Sha256Backend, Sha256Hash } from "./types.js";

/** What {@link LayerDigester} and `layerDigests` report for one layer blob. */
export interface LayerDigests {
  /** Digest of the blob as given (compressed bytes if compressed). */
  digest: Digest;
  /** Size of the blob as given. */
  size: number;
  /** DiffID: digest of the uncompressed tar. Equals `digest` for an uncompressed blob. */
  diffID: Digest;
  /** Size of the uncompressed tar. */
  uncompressedSize: number;
  /** Compression detected from the magic bytes. */
  compression: Compression;
}

/** Options of {@link LayerDigester} and `layerDigests`. */
export interface LayerDigestOptions {
  /**
   * Refuse blobs that decompress to more than this many bytes
   * (`ERR_DECOMPRESSION_LIMIT`); protects against decompression bombs.
   */
  maxUncompressedSize?: number;
  /** Called with every chunk of the uncompressed tar (e.g. to parse it on the way). */
  onUncompressed?: (chunk: Uint8Array) => void;
}

/**
 * Push-style single-pass digester of a layer blob: feed it the blob's bytes
 * (e.g. while writing them to disk) and `finish()` returns both the blob digest
 * and the DiffID. Nothing is buffered beyond the first few bytes.
 */
export class LayerDigester {
  readonly #backend: Sha256Backend;
  readonly #opts: LayerDigestOptions;
  readonly #blob: Sha256Hash;
  #diff: Sha256Hash | undefined;
  #size = 0;
  #usize = 0;
  #head: Uint8Array | undefined = new Uint8Array(0);
  #compression: Compression = "none";
  #dec: Decompressor | undefined;

  constructor(backend: Sha256Backend, opts: LayerDigestOptions = {}) {
    this.#backend = backend;
    this.#opts = opts;
    this.#blob = backend.create();
  }

  /** Feed the next chunk of the blob. */
  async push(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    this.#blob.update(chunk);
    this.#size += chunk.length;
    if (this.#head !== undefined) {
      // Collect the first 4 bytes to detect the compression.
      const head = new Uint8Array(this.#head.length + chunk.length);
      head.set(this.#head);
      head.set(chunk, this.#head.length);
      if (head.length < 4) {
        this.#head = head;
        return;
      }
      this.#head = undefined;
      await this.#start(head);
      await this.#dec!.push(head);
      return;
    }
    await this.#dec!.push(chunk);
  }

  async #start(head: Uint8Array): Promise<void> {
    this.#compression = detectCompression(head);
    this.#diff = this.#compression === "none" ? undefined : this.#backend.create();
    const limit = this.#opts.maxUncompressedSize;
    const onUncompressed = this.#opts.onUncompressed;
    this.#dec = await createDecompressor(this.#compression, (out) => {
      this.#usize += out.length;
      if (limit !== undefined && this.#usize > limit) {
        throw new DecompressionLimitError(
          `layer decompresses to more than the limit of ${limit} bytes (${this.#compression})`,
          { details: { limit } },
        );
      }
      this.#diff?.update(out);
      onUncompressed?.(out);
    });
  }

  /** Finish: returns the digests once the decompressor has drained. */
  async finish(): Promise<LayerDigests> {
    if (this.#head !== undefined) {
      const head = this.#head;
      this.#head = undefined;
      await this.#start(head);
      await this.#dec!.push(head);
    }
    await this.#dec!.end();
    const digest = this.#blob.digest();
    const diffID = this.#diff ? this.#diff.digest() : digest;
    return {
      digest,
      size: this.#size,
      diffID,
      uncompressedSize: this.#compression === "none" ? this.#size : this.#usize,
      compression: this.#compression,
    };
  }

  /** Abandon the digester (after an error elsewhere). */
  abort(): void {
    this.#dec?.abort();
    this.#blob.destroy();
    this.#diff?.destroy();
  }
}

/** Read a layer blob once; return its digest, size, DiffID and compression. */
export async function layerDigestsWith(
  backend: Sha256Backend,
  source: ByteSource,
  opts?: LayerDigestOptions,
): Promise<LayerDigests> {
  const d = new LayerDigester(backend, opts);
  try {
    for await (const chunk of chunksOf(source)) await d.push(chunk);
    return await d.finish();
  } catch (err) {
    d.abort();
    throw err;
  }
}

/** Result of `digestStream`. */
export interface StreamDigest {
  digest: Digest;
  size: number;
}

/** Digest everything `source` yields. */
export async function digestStreamWith(backend: Sha256Backend, source: ByteSource): Promise<StreamDigest> {
  const h = backend.create();
  let size = 0;
  try {
    for await (const chunk of chunksOf(source)) {
      h.update(chunk);
      size += chunk.length;
    }
    return { digest: h.digest(), size };
  } catch (err) {
    h.destroy();
    throw err;
  }
}
