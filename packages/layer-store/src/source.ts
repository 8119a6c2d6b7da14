/**
 * Taking a caller's byte stream over at the call, before the first `await`.
 *
 * An API that is given a stream and awaits anything (a parent check, a lease,
 * opening an ingest file) before it reads a byte must not leave the stream
 * unread meanwhile: a child process's stdout is drained into nothing by Node
 * when the child exits while no one reads it (`child_process` resumes, on the
 * tick after `exit`, every stdio stream without a `'readable'` listener, and a
 * resumed stream with no `'data'` listener drops its bytes; `pause()` does
 * not help, the resume undoes it). The layer stored from it was empty.
 *
 * {@link claimSource} starts reading at once: it asks the source for its first
 * chunk, which for a Node Readable attaches the `'readable'` listener of its
 * async iterator (so a `resume()` no longer makes it flow) and for a web
 * ReadableStream takes the reader. Nothing is lost whatever the stream's
 * timing; backpressure holds until the API consumes the chunks.
 * @module
 */
import { type ByteSource, chunksOf, FailedPreconditionError } from "@berth/digest";
import { LayerStoreErrorCode } from "./errors.js";

/** A {@link ByteSource} that an API took over with {@link claimSource}: read it once, or release it. */
export interface ClaimedSource extends AsyncIterable<Uint8Array> {
  /**
   * Stop reading a source that was not read to its end (idempotent, and a
   * no-op once it was): a Node stream is destroyed, an iterator returned.
   * Call it when the API fails before it reads.
   */
  release(): void;
}

const noop = () => {};

class Claimed implements ClaimedSource {
  readonly #source: ByteSource;
  readonly #chunks: AsyncGenerator<Uint8Array>;
  /** The first chunk, asked for at the claim; undefined once iterated or released. */
  #first: Promise<IteratorResult<Uint8Array>> | undefined;

  constructor(source: ByteSource) {
    this.#source = source;
    this.#chunks = chunksOf(source);
    this.#first = this.#chunks.next();
    // seen by the iteration; until then, not an unhandled rejection
    this.#first.catch(noop);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    const first = this.#first;
    if (first === undefined) {
      throw new FailedPreconditionError("byte source was already read or released", { code: LayerStoreErrorCode.SOURCE_ALREADY_READ });
    }
    this.#first = undefined;
    try {
      for (let r = await first; !r.done; r = await this.#chunks.next()) yield r.value;
    } finally {
      // an early stop (the consumer failed or broke off): the source is stopped too
      await this.#chunks.return(undefined);
    }
  }

  release(): void {
    if (this.#first === undefined) return; // iterated: its own end released it
    this.#first = undefined;
    // queued behind the pending first read; a Node stream stops at once
    this.#chunks.return(undefined).catch(noop);
    const s = this.#source as { destroy?: () => void };
    if (typeof s.destroy === "function") s.destroy();
  }
}

/**
 * Take `source` over now: start reading it (see the module doc) and return
 * it as chunks to be read once. Call before the first `await` of an API that
 * accepts a stream; a source claimed already is returned as is.
 */
export function claimSource(source: ByteSource): ClaimedSource {
  return source instanceof Claimed ? source : new Claimed(source);
}
