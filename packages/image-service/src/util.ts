/**
 * Small helpers shared by the service's modules.
 * @module
 */

/** `source`'s chunks, failing with the signal's reason once it is aborted. */
export async function* abortable(source: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted();
  for await (const chunk of source) {
    signal?.throwIfAborted();
    yield chunk;
  }
}
