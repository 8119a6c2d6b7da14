/**
 * gzip for pushing layers, made as pigz makes it: the input is cut into
 * blocks that are compressed side by side (zlib's thread pool), each
 * primed with the 32 KiB before it as its dictionary, so the output is one
 * ordinary gzip member, within a fraction of a percent of a single zlib
 * stream's size. A block whose bytes look random (an entropy estimate over a
 * sample: compressed files, keys, media) is not given to deflate at all but
 * written as stored blocks — deflate spends the same time on bytes it cannot
 * shrink as on text (about 30 MB/s at any level), which made pushes of such
 * layers slow. A block whose start shows that repeated strings barely help
 * (text with random salt) is deflated with runs only ({@link stringsPay}).
 *
 * The output depends only on the input and the level: the same layer always
 * gives the same digest, which the blob-info cache relies on.
 * @module
 */
import { promisify } from "node:util";
import * as zlib from "node:zlib";

const deflateRaw = promisify(zlib.deflateRaw) as (buf: Uint8Array, opts: zlib.ZlibOptions) => Promise<Buffer>;

/**
 * Bytes per block. 1 MiB rather than 256 KiB: each block is a zlib stream of
 * its own, and the main thread's share per block (a stream to set up, its
 * output to collect) made 256 KiB blocks cost 15 % more wall time in a push
 * of the registry bench's image (3.1 → 2.7 s).
 */
const BLOCK = 1 << 20;
/** Deflate's window: what a block may refer back to. */
const WINDOW = 32 << 10;
/** Blocks in flight. */
const PARALLEL = 4;
/** Above this many bits per byte a sampled block is treated as incompressible. */
const RANDOM_BITS = 7.5;

/** gzip header: no name, no time, OS unix (as zlib writes it). */
const HEADER = Uint8Array.of(0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03);

/** Shannon entropy (bits per byte) of every 16th byte of `b`. */
function sampledEntropy(b: Uint8Array): number {
  const counts = new Uint32Array(256);
  let n = 0;
  for (let i = 0; i < b.length; i += 16) {
    counts[b[i]!]!++;
    n++;
  }
  let bits = 0;
  for (const c of counts) {
    if (c === 0) continue;
    const p = c / n;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** `b` as non-final stored deflate blocks (the stream is byte-aligned after each block's sync flush). */
function stored(b: Uint8Array): Uint8Array {
  const pieces = Math.ceil(b.length / 65535);
  const out = new Uint8Array(b.length + pieces * 5);
  let o = 0;
  for (let i = 0; i < b.length; i += 65535) {
    const len = Math.min(65535, b.length - i);
    out.set([0x00, len & 0xff, len >> 8, ~len & 0xff, (~len >> 8) & 0xff], o);
    out.set(b.subarray(i, i + len), o + 5);
    o += 5 + len;
  }
  return out;
}

/** Bytes at the start of a block that {@link stringsPay} compresses both ways. */
const PROBE = 8 << 10;
/** String matches must make the probe this much smaller than runs alone, or the block is deflated with runs only. */
const STRINGS_GAIN = 0.95;

/**
 * Whether deflate's search for repeated strings pays on `block`: its first
 * {@link PROBE} bytes compressed at level 1 with string matching, and with
 * runs only (`Z_RLE`, Huffman coding and repeats of the last byte). Text with
 * random salt in every line (the bench's 4 KiB files, logs with IDs, base64)
 * gives deflate little to match and costs it ~75 MB/s at any level; with runs
 * only it goes at ~300 MB/s to a size within ~1% (measured on the registry
 * bench's layer: 0.677 against 0.686 of the input).
 */
export function stringsPay(block: Uint8Array): boolean {
  if (block.length <= PROBE) return true;
  const sample = block.subarray(0, PROBE);
  const opts = { level: 1, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  const strings = zlib.deflateRawSync(sample, opts).length;
  const runs = zlib.deflateRawSync(sample, { ...opts, strategy: zlib.constants.Z_RLE }).length;
  return strings < runs * STRINGS_GAIN;
}

/** The compressed form of one block: deflate ending in a sync flush (never final), or stored. */
function compressBlock(block: Uint8Array, before: Uint8Array | undefined, level: number): Promise<Uint8Array> {
  if (sampledEntropy(block) > RANDOM_BITS) return Promise.resolve(stored(block));
  const strategy = stringsPay(block) ? zlib.constants.Z_DEFAULT_STRATEGY : zlib.constants.Z_RLE;
  // chunkSize: a text block's whole output in one buffer, one trip to the thread pool (zlib's
  // default of 16 KiB took a round trip per 16 KiB of output, and the main thread's time went to
  // them and to the garbage they left); an output buffer the size of the block instead gave the
  // same time with more memory (push RSS 180–190 MiB either way, with four layers at once)
  return deflateRaw(block, {
    level,
    strategy,
    chunkSize: 256 << 10,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
    ...(before ? { dictionary: before } : {}),
  });
}

/** The input re-cut into blocks of {@link BLOCK} bytes (the last may be shorter). */
async function* blocks(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(BLOCK);
  let fill = 0;
  for await (const chunk of source) {
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(BLOCK - fill, chunk.length - at);
      buf.set(chunk.subarray(at, at + take), fill);
      fill += take;
      at += take;
      if (fill === BLOCK) {
        yield buf;
        buf = new Uint8Array(BLOCK);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

/**
 * gzip `source` as the module doc describes, streaming: at most a few blocks
 * are held at once. `level` is zlib's (default 6, as docker and BuildKit).
 */
export async function* parallelGzip(source: AsyncIterable<Uint8Array>, level = 6): AsyncGenerator<Uint8Array> {
  yield HEADER;
  let crc = 0;
  let size = 0;
  let previous: Uint8Array | undefined;
  const inFlight: Promise<Uint8Array>[] = [];
  for await (const block of blocks(source)) {
    crc = zlib.crc32(block, crc);
    size = (size + block.length) % 2 ** 32;
    const pending = compressBlock(block, previous?.subarray(Math.max(0, previous.length - WINDOW)), level);
    pending.catch(() => undefined); // awaited in order below; a failure is not also unhandled
    inFlight.push(pending);
    previous = block;
    if (inFlight.length >= PARALLEL) yield await inFlight.shift()!;
  }
  while (inFlight.length > 0) yield await inFlight.shift()!;
  // the final block (empty, stored), then CRC-32 and size, little-endian
  const trailer = new Uint8Array(13);
  trailer.set([0x01, 0x00, 0x00, 0xff, 0xff]);
  const view = new DataView(trailer.buffer);
  view.setUint32(5, crc >>> 0, true);
  view.setUint32(9, size, true);
  yield trailer;
}
