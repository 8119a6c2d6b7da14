/**
 * Sources of bytes berth accepts everywhere: Node readables, web
 * ReadableStreams and any (async) iterable of byte chunks.
 */
export type ByteSource =
  | AsyncIterable<Uint8Array | string>
  | Iterable<Uint8Array>
  | ReadableStream<Uint8Array>;

const encoder = new TextEncoder();

function isAsyncIterable(x: unknown): x is AsyncIterable<unknown> {
  return x != null && typeof (x as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}

function isIterable(x: unknown): x is Iterable<unknown> {
  return x != null && typeof (x as Iterable<unknown>)[Symbol.iterator] === "function";
}

async function* fromReader(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Iterate any {@link ByteSource} as `Uint8Array` chunks (strings become UTF-8). */
export async function* chunksOf(source: ByteSource): AsyncGenerator<Uint8Array> {
  let it: AsyncIterable<unknown> | Iterable<unknown>;
  if (isAsyncIterable(source)) it = source;
  else if (typeof (source as ReadableStream).getReader === "function") it = fromReader(source as ReadableStream<Uint8Array>);
  else if (isIterable(source)) it = source;
  else throw new TypeError("expected a Node stream, a ReadableStream or an (async) iterable of Uint8Array");
  for await (const chunk of it) {
    if (typeof chunk === "string") yield encoder.encode(chunk);
    else if (chunk instanceof Uint8Array) yield chunk;
    else if (ArrayBuffer.isView(chunk)) yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else if (chunk instanceof ArrayBuffer) yield new Uint8Array(chunk);
    else throw new TypeError(`expected byte chunks, got ${typeof chunk}`);
  }
}

/**
 * Re-chunk `source` so that every chunk but the last is at least `min` bytes:
 * small chunks are gathered (copied once) into one, a chunk already that
 * large passes as it is. A network body arrives in socket-sized pieces
 * (16–64 KiB); each consumer step (a write, a hash update, a decompressor
 * call, an `await`) costs about the same whatever the size, so consumers that
 * do several per chunk go faster on larger ones.
 */
export async function* coalesceChunks(source: AsyncIterable<Uint8Array>, min: number): AsyncGenerator<Uint8Array> {
  let parts: Uint8Array[] = [];
  let held = 0;
  const take = (): Uint8Array => {
    const out = parts.length === 1 ? parts[0]! : new Uint8Array(held);
    if (parts.length > 1) {
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
    }
    parts = [];
    held = 0;
    return out;
  };
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    parts.push(chunk);
    held += chunk.length;
    if (held >= min) yield take();
  }
  if (held > 0) yield take();
}
