/**
 * What a layer blob is, learned while it streams by: its compression (from
 * the first bytes), the DiffID and size of its content once uncompressed,
 * whether that content is a tar, and dockerd's size for it (the sum of the
 * tar's file sizes). The blob's own digest is the writer's job (it hashes
 * what it writes). The same code runs on the calling thread (`ingestLayer`,
 * `register`, docker-archive's load) and on load's worker threads, so this
 * module imports nothing that a worker would not want to load
 * (`@berth/layer-store/scan`).
 * @module
 */
import {
  type BerthError,
  type Compression,
  createDecompressor,
  DecompressionLimitError,
  type Decompressor,
  type Digest,
  detectCompression,
  sha256,
} from "@berth/digest";
import { TarCheck } from "./tarcheck.js";

/** The facts {@link LayerScan} gathers. */
export interface ScanFacts {
  compression: Compression;
  /** DiffID of a compressed blob; an uncompressed blob's DiffID is its own digest (the writer's). */
  diffID?: Digest;
  /** Size of the content once uncompressed. */
  uncompressedSize: number;
  /** Why the uncompressed content is not a tar archive, if it is not. */
  notTar?: BerthError;
  /** Sum of the tar's file sizes (dockerd's layer size), when it is a tar. */
  contentSize?: number;
}

/** Options of {@link LayerScan}. */
export interface LayerScanOptions {
  /** What errors call the blob (an archive entry's name, a file). */
  name: string;
  /** Largest uncompressed size accepted (`ERR_DECOMPRESSION_LIMIT`). */
  maxUncompressedSize: number;
}

/** Push-style scan of one layer blob: feed every chunk in order, then {@link finish}. */
export class LayerScan {
  readonly #name: string;
  readonly #max: number;
  readonly #tar = new TarCheck();
  #head: Uint8Array | undefined;
  #compression: Compression | undefined;
  #diff: DiffDigester | undefined;
  #size = 0;

  constructor(opts: LayerScanOptions) {
    this.#name = opts.name;
    this.#max = opts.maxUncompressedSize;
  }

  /**
   * True once the blob is known to be compressed: its chunks then go to a
   * decompressor, which may still hold one after `push` settled, so the
   * caller must not reuse the chunk's memory.
   */
  get compressed(): boolean {
    return this.#diff !== undefined;
  }

  /** The blob's compression, once its first bytes were pushed. */
  get compression(): Compression | undefined {
    return this.#compression;
  }

  /** The next chunk. Returns a promise only while a decompressor takes it. */
  push(chunk: Uint8Array): Promise<void> | undefined {
    this.#size += chunk.length;
    if (this.#compression === undefined) {
      const head = this.#head ? concat(this.#head, chunk) : chunk;
      if (head.length < 4) {
        this.#head = head === chunk ? chunk.slice() : head;
        return undefined;
      }
      this.#head = undefined;
      this.#compression = detectCompression(head);
      if (this.#compression !== "none") this.#diff = new DiffDigester(this.#compression, this.#name, this.#max, (c) => this.#tar.push(c));
      return this.#take(head);
    }
    return this.#take(chunk);
  }

  #take(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#diff) return this.#diff.push(chunk);
    if (this.#size > this.#max) throw tooLarge(this.#name, this.#max);
    this.#tar.push(chunk);
    return undefined;
  }

  /** Every chunk was pushed: the facts (a decompressor's errors surface here). */
  async finish(): Promise<ScanFacts> {
    if (this.#compression === undefined) {
      this.#compression = "none";
      if (this.#head) this.#take(this.#head);
      this.#head = undefined;
    }
    if (this.#compression === "none" && this.#size > this.#max) throw tooLarge(this.#name, this.#max);
    const d = this.#diff ? await this.#diff.finish() : undefined;
    const err = this.#tar.finish();
    return {
      compression: this.#compression,
      ...(d ? { diffID: d.diffID } : {}),
      uncompressedSize: d ? d.uncompressedSize : this.#size,
      ...(err ? { notTar: err } : { contentSize: this.#tar.contentSize }),
    };
  }

  /** Stop early (after an error elsewhere): releases the decompressor. */
  abort(): void {
    this.#diff?.abort();
  }
}

function tooLarge(name: string, limit: number): DecompressionLimitError {
  return new DecompressionLimitError(`${name}: decompresses to more than the layer limit of ${limit} bytes`, { details: { limit } });
}

/** DiffID of a compressed blob: only the decompressed bytes are hashed here (the writer hashes the blob). */
class DiffDigester {
  readonly #hash = sha256.create();
  #size = 0;
  #decompressor: Decompressor | undefined;
  readonly #ready: Promise<Decompressor>;

  constructor(compression: "gzip" | "zstd", name: string, max: number, onUncompressed: (chunk: Uint8Array) => void) {
    this.#ready = createDecompressor(compression, (chunk) => {
      this.#size += chunk.length;
      if (this.#size > max) throw tooLarge(`${name} (${compression})`, max);
      this.#hash.update(chunk);
      onUncompressed(chunk);
    }).then((d) => (this.#decompressor = d));
    this.#ready.catch(() => {});
  }

  async push(chunk: Uint8Array): Promise<void> {
    await (this.#decompressor ?? (await this.#ready)).push(chunk);
  }

  async finish(): Promise<{ diffID: Digest; uncompressedSize: number }> {
    await (this.#decompressor ?? (await this.#ready)).end();
    return { diffID: this.#hash.digest(), uncompressedSize: this.#size };
  }

  abort(): void {
    this.#decompressor?.abort();
    this.#hash.destroy();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
