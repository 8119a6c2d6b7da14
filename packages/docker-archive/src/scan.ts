/**
 * What `load` learns about a blob while it streams into the store, besides
 * its digest (which the store's writer, or a worker, computes): compression
 * from the first bytes, the DiffID and size of a compressed blob's content,
 * and whether that content is a tar (only layers must be). The same code runs
 * on the calling thread and on load's worker threads.
 * @module
 */
import { type BerthError, type Compression, type Digest, detectCompression, InvalidArgumentError } from "@berth/digest";
// The module alone: worker threads load this and should start fast.
import { TarCheck } from "@berth/layer-store/tarcheck";
import { type DiffDigester, createDiffDigester } from "./diffid.js";
import { ArchiveErrorCode } from "./errors.js";

/** The facts {@link BlobScan} gathers. */
export interface BlobFacts {
  compression: Compression;
  /** DiffID of a compressed blob; an uncompressed blob's DiffID is its digest. */
  diffID?: Digest;
  /** Size of the content once uncompressed. */
  uncompressedSize: number;
  /** Why the uncompressed content is not a tar archive, if it is not. */
  notTar?: BerthError;
  /** Sum of the tar's file sizes (dockerd's layer size), when it is a tar. */
  contentSize?: number;
}

/** Push-style scan of one blob: feed every chunk in order, then {@link finish}. */
export class BlobScan {
  readonly #name: string;
  readonly #maxLayer: number;
  readonly #tar = new TarCheck();
  #head: Uint8Array | undefined;
  #compression: Compression | undefined;
  #digester: DiffDigester | undefined;
  #size = 0;

  /** `name` is the archive entry (for messages); `maxLayer` bounds the uncompressed size. */
  constructor(name: string, maxLayer: number) {
    this.#name = name;
    this.#maxLayer = maxLayer;
  }

  /**
   * True once the blob is known to be compressed: its chunks then go to a
   * decompressor, which may still hold one after `push` settled, so the
   * caller must not reuse the chunk's memory.
   */
  get compressed(): boolean {
    return this.#digester !== undefined;
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
      if (this.#compression !== "none")
        this.#digester = createDiffDigester(this.#compression, this.#maxLayer, (c) => this.#tar.push(c));
      return this.#take(head);
    }
    return this.#take(chunk);
  }

  #take(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#digester) return this.#digester.push(chunk);
    if (this.#size > this.#maxLayer) throw this.#tooLarge();
    this.#tar.push(chunk);
    return undefined;
  }

  #tooLarge(): InvalidArgumentError {
    // An uncompressed entry that large cannot be a layer we accept.
    return new InvalidArgumentError(`archive entry ${this.#name}: more than the layer limit of ${this.#maxLayer} bytes`, {
      code: ArchiveErrorCode.DECOMPRESSION_LIMIT,
      details: { limit: this.#maxLayer },
    });
  }

  /** Every chunk was pushed: the facts (a decompressor's errors surface here). */
  async finish(): Promise<BlobFacts> {
    if (this.#compression === undefined) {
      this.#compression = "none";
      if (this.#head) this.#take(this.#head);
      this.#head = undefined;
    }
    if (this.#compression === "none" && this.#size > this.#maxLayer) throw this.#tooLarge();
    const d = this.#digester ? await this.#digester.finish() : undefined;
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
    this.#digester?.abort();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
