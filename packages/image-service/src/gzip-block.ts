/**
 * One block of the push's gzip (`gzip.ts`), compressed synchronously: what a
 * gzip worker thread does with each block it is given. A block whose bytes
 * look random (an entropy estimate over a sample: compressed files, keys,
 * media) is not given to deflate at all but written as stored blocks —
 * deflate spends the same time on bytes it cannot shrink as on text (about
 * 30 MB/s at any level). A block whose start shows that repeated strings
 * barely help (text with random salt) is deflated with runs only
 * ({@link stringsPay}). Also here: CRC-32 arithmetic to join the blocks'
 * checksums ({@link crc32Combine}).
 *
 * The output depends only on the block, the 32 KiB before it and the level.
 * @module
 */
import * as zlib from "node:zlib";

/** Above this many bits per byte a sampled block is treated as incompressible. */
const RANDOM_BITS = 7.5;

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

/**
 * The compressed form of one block: raw deflate ending in a sync flush (never
 * final, so blocks concatenate into one stream), or stored. `before`: the
 * bytes before the block (at most deflate's 32 KiB window), its dictionary.
 */
export function compressBlock(block: Uint8Array, before: Uint8Array | undefined, level: number): Uint8Array {
  if (sampledEntropy(block) > RANDOM_BITS) return stored(block);
  const strategy = stringsPay(block) ? zlib.constants.Z_DEFAULT_STRATEGY : zlib.constants.Z_RLE;
  // chunkSize: the output in one buffer (deflate grows no block by 64 KiB), handed over whole; in
  // pieces, zlib joins them into another and the pieces are garbage (peak RSS of the registry
  // bench's push: 236 → 207 MiB)
  return zlib.deflateRawSync(block, {
    level,
    strategy,
    chunkSize: block.length + (64 << 10),
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
    ...(before ? { dictionary: before } : {}),
  });
}

/** CRC-32's polynomial, bit-reversed (as zlib and gzip use it). */
const POLY = 0xedb88320;

/** `a` × `b` modulo the CRC polynomial, both bit-reversed (zlib's multmodp). */
function mulModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if ((a & m) !== 0) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) modulo the polynomial, k = 0..31. */
const X2N = (() => {
  const t = new Uint32Array(32);
  let p = 0x40000000; // x^1
  t[0] = p;
  for (let k = 1; k < 32; k++) t[k] = p = mulModP(p, p);
  return t;
})();

/** x^(n·2^k) modulo the polynomial. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = mulModP(X2N[k & 31]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/**
 * The CRC-32 of A followed by B, from `crcA`, `crcB` and B's length (zlib's
 * `crc32_combine`): blocks checksummed apart give the whole stream's CRC.
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (mulModP(x2nModP(lengthB, 3), crcA) ^ crcB) >>> 0;
}
