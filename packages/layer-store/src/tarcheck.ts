/**
 * A streaming check that a layer's uncompressed bytes are a tar archive, as
 * `docker load` (Go's archive/tar) will read it: every header has a valid
 * checksum and readable number fields, each entry's data is followed by the
 * next header, and the input does not end inside a header or an entry.
 * Without it a blob of random bytes would register as a layer and only fail
 * later, in whichever tool tries to unpack it.
 *
 * It looks only at header blocks and skips entry data by arithmetic, so it
 * costs next to nothing beside the hashing. It buffers at most one header
 * block and one PAX extended header (≤ 1 MiB, Go's limit).
 */
import { DataIntegrityError } from "@berth/digest";
import { LayerStoreErrorCode } from "./errors.js";

const BLOCK = 512;
/** Go's archive/tar refuses PAX and GNU long-name headers larger than this. */
const MAX_SPECIAL = 1 << 20;

/** Code of the error for bytes that are not a tar archive. */
export const INVALID_LAYER_TAR = LayerStoreErrorCode.INVALID_TAR;

function invalid(what: string, offset: number): DataIntegrityError {
  return new DataIntegrityError(`layer is not a valid tar archive: ${what} at byte ${offset}`, {
    code: INVALID_LAYER_TAR,
    details: { offset },
  });
}

/** Header-only types: whatever size they claim, no data follows (as in Go's archive/tar). */
const HEADER_ONLY = new Set(["1", "2", "3", "4", "5", "6"]);

/**
 * A tar header number field: octal text (NUL/space padded) or GNU base-256;
 * undefined when unreadable (as Go's archive/tar would refuse it).
 */
export function parseTarNumber(b: Uint8Array, off: number, len: number): number | undefined {
  if (b[off]! & 0x80) {
    // base-256: a big-endian number, 0x80 marks the encoding, 0x40 a negative
    if (b[off]! & 0x40) return undefined;
    let n = b[off]! & 0x3f;
    for (let i = 1; i < len; i++) {
      n = n * 256 + b[off + i]!;
      if (n > Number.MAX_SAFE_INTEGER) return undefined;
    }
    return n;
  }
  let i = off;
  const end = off + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++; // leading padding
  if (i === end) return 0;
  let n = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c >= 0x30 && c <= 0x37) {
      n = n * 8 + (c - 0x30);
      digits++;
    } else if (c === 0x20 || c === 0) break;
    else return undefined;
  }
  for (; i < end; i++) if (b[i] !== 0x20 && b[i] !== 0) return undefined; // only padding after the digits
  return digits > 0 && Number.isSafeInteger(n) ? n : 0;
}

/**
 * Sums of a block's bytes, 4 bytes at a time (`w` views the same 512 bytes):
 * the unsigned byte sum, and how many bytes are ≥ 128 (for the signed sum
 * that old tars used). Per-byte loops made the check cost ~3 µs per header,
 * visible on layers of many small files.
 */
function byteSums(w: Uint32Array): { sum: number; high: number } {
  let pairs = 0; // two 16-bit lanes of byte pairs: at most 128 × 2 × 255 each
  let high = 0; // four 8-bit lanes of high-bit counts: at most 128 each
  for (let i = 0; i < w.length; i++) {
    const x = w[i]!;
    pairs += (x & 0x00ff00ff) + ((x >>> 8) & 0x00ff00ff);
    high += (x >>> 7) & 0x01010101;
  }
  return {
    sum: (pairs & 0xffff) + (pairs >>> 16),
    high: (high & 0xff) + ((high >>> 8) & 0xff) + ((high >>> 16) & 0xff) + (high >>> 24),
  };
}

/**
 * A header block's checksum holds, as the unsigned or the signed byte sum
 * (field counted as spaces). `w` is a Uint32Array view of the same 512 bytes
 * (so `h` must start 4-byte aligned, e.g. a block of its own).
 */
export function tarChecksumOk(h: Uint8Array, w: Uint32Array): boolean {
  const want = parseTarNumber(h, 148, 8);
  if (want === undefined) return false;
  let field = 0;
  let fieldHigh = 0;
  for (let i = 148; i < 156; i++) {
    field += h[i]!;
    if (h[i]! > 127) fieldHigh++;
  }
  const { sum, high } = byteSums(w);
  const unsigned = sum - field + 8 * 0x20;
  return want === unsigned || want === unsigned - 256 * (high - fieldHigh);
}

function isZero(h: Uint32Array): boolean {
  for (let i = 0; i < h.length; i++) if (h[i] !== 0) return false;
  return true;
}

/** The `size` record of a PAX extended header, undefined when absent; throws on a malformed record. */
function paxSize(data: Uint8Array, offset: number): number | undefined {
  // Records are "<length> <key>=<value>\n", <length> counting every byte of the record.
  let size: number | undefined;
  let p = 0;
  while (p < data.length && data[p] !== 0) {
    let q = p;
    let len = 0;
    while (q < data.length && data[q]! >= 0x30 && data[q]! <= 0x39 && q - p < 16) len = len * 10 + (data[q++]! - 0x30);
    if (q === p || data[q] !== 0x20 || len <= q - p + 1 || p + len > data.length || data[p + len - 1] !== 0x0a) {
      throw invalid("malformed PAX record", offset);
    }
    const rec = data.subarray(q + 1, p + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw invalid("malformed PAX record", offset);
    if (eq === 4 && rec[0] === 0x73 && rec[1] === 0x69 && rec[2] === 0x7a && rec[3] === 0x65) {
      if (rec.length > 5 + 20) throw invalid("bad PAX size", offset);
      const v = String.fromCharCode(...rec.subarray(5));
      if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v))) throw invalid("bad PAX size", offset);
      size = Number(v);
    }
    p += len;
  }
  return size;
}

/**
 * Incremental tar structure check. `push` every chunk of the uncompressed
 * layer in order, then `finish()`: it returns the first problem found as a
 * `DataIntegrityError` with code `ERR_INVALID_TAR` (or undefined when the bytes
 * are a tar). `push` does not throw for bad input, so it can run inside a hashing callback.
 * Like Go's reader, it accepts input that ends on a header boundary without
 * the end-of-archive blocks, and ignores whatever follows those blocks.
 */
export class TarCheck {
  /** Absolute offset of the next byte to be pushed. */
  #pos = 0;
  /** Offset where the next header starts. */
  #next = 0;
  readonly #hdr = new Uint8Array(BLOCK);
  readonly #words = new Uint32Array(this.#hdr.buffer);
  #hdrFill = 0;
  /** A zero block was read: the next block must be zero too (end of archive). */
  #zero = false;
  #done = false;
  #error: DataIntegrityError | undefined;
  /** PAX extended header data being collected (its data follows the header). */
  #pax: Uint8Array | undefined;
  #paxFill = 0;
  #paxAt = 0;
  /** Size of the next entry's data from a PAX `size` record. */
  #paxNextSize: number | undefined;
  /** Extra GNU sparse header blocks still to read before the data. */
  #sparseExt = false;
  /** Data size of the sparse entry whose extension blocks are being read. */
  #sparseSize = 0;
  /** Offset where the current entry's data ends (before padding). */
  #dataEnd = 0;
  #contentSize = 0;

  /**
   * Sum of the data sizes of the entries seen so far (extended headers not
   * counted): what dockerd records as a layer's size when it applies the tar.
   */
  get contentSize(): number {
    return this.#contentSize;
  }

  /** Feed the next chunk of the uncompressed tar. */
  push(chunk: Uint8Array): void {
    if (this.#done || this.#error) {
      this.#pos += chunk.length;
      return;
    }
    try {
      this.#scan(chunk);
    } catch (err) {
      if (!(err instanceof DataIntegrityError)) throw err; // a bug, not bad input
      this.#error = err;
    }
    this.#pos += chunk.length;
  }

  /** The first problem found, if any, once every byte was pushed. */
  finish(): DataIntegrityError | undefined {
    if (this.#error || this.#done) return this.#error;
    const end = this.#pos;
    if (this.#hdrFill > 0) return invalid("input ends inside a header", end);
    if (this.#pax) return invalid("input ends inside a PAX extended header", end);
    if (this.#sparseExt) return invalid("input ends inside a GNU sparse header", end);
    if (end < this.#dataEnd) return invalid("input ends inside an entry's data", end);
    // Right after the data Go's reader sees a clean end; inside the padding it does not.
    if (end > this.#dataEnd && end < this.#next) return invalid("input ends inside an entry's padding", end);
    return undefined; // ended on a header boundary
  }

  #scan(chunk: Uint8Array): void {
    const base = this.#pos;
    let i = 0;
    while (i < chunk.length && !this.#done) {
      const at = base + i;
      if (this.#pax) {
        // collect the PAX data, then skip to the header after its padding
        const take = Math.min(chunk.length - i, this.#pax.length - this.#paxFill);
        this.#pax.set(chunk.subarray(i, i + take), this.#paxFill);
        this.#paxFill += take;
        i += take;
        if (this.#paxFill === this.#pax.length) {
          this.#paxNextSize = paxSize(this.#pax, this.#paxAt);
          this.#pax = undefined;
        }
        continue;
      }
      if (at < this.#next) {
        i += Math.min(chunk.length - i, this.#next - at); // entry data and padding
        continue;
      }
      const take = Math.min(chunk.length - i, BLOCK - this.#hdrFill);
      this.#hdr.set(chunk.subarray(i, i + take), this.#hdrFill);
      this.#hdrFill += take;
      i += take;
      if (this.#hdrFill === BLOCK) {
        this.#hdrFill = 0;
        this.#header(this.#next);
      }
    }
  }

  /** A full block at `offset` (a header, an end block or a sparse extension). */
  #header(offset: number): void {
    const h = this.#hdr;
    this.#next = offset + BLOCK;
    if (this.#sparseExt) {
      this.#sparseExt = h[504] !== 0; // another extension block follows
      if (!this.#sparseExt) this.#entry(this.#sparseSize);
      return;
    }
    // All-zero checksum field: maybe an end block (a real header's checksum is never 0).
    if (h[148] === 0 && h[149] === 0 && isZero(this.#words)) {
      if (this.#zero) this.#done = true; // two zero blocks: the end
      this.#zero = true;
      return;
    }
    if (this.#zero) throw invalid("a zero block followed by a header", offset);
    if (!tarChecksumOk(h, this.#words)) throw invalid("bad header checksum", offset);
    const sizeField = parseTarNumber(h, 124, 12);
    if (sizeField === undefined) throw invalid("bad size field", offset);
    for (const [off, len, name] of [
      [100, 8, "mode"],
      [108, 8, "uid"],
      [116, 8, "gid"],
      [136, 12, "mtime"],
    ] as const) {
      if (parseTarNumber(h, off, len) === undefined) throw invalid(`bad ${name} field`, offset);
    }
    const type = h[156] === 0 ? "0" : String.fromCharCode(h[156]!);
    if (type === "x" || type === "g" || type === "L" || type === "K") {
      if (sizeField > MAX_SPECIAL) throw invalid(`extended header of ${sizeField} bytes (limit ${MAX_SPECIAL})`, offset);
      if (type === "x" && sizeField > 0) {
        this.#pax = new Uint8Array(sizeField);
        this.#paxFill = 0;
        this.#paxAt = offset;
      } else if (type === "x") this.#paxNextSize = undefined;
      this.#entry(sizeField);
      return;
    }
    // A regular entry: the PAX size (if any) overrides the header's.
    const size = HEADER_ONLY.has(type) ? 0 : (this.#paxNextSize ?? sizeField);
    this.#paxNextSize = undefined;
    if (type === "S" && h[482] !== 0) {
      // old GNU sparse: extension blocks of sparse entries come before the data
      this.#sparseExt = true;
      this.#sparseSize = size;
      this.#contentSize += size;
      return;
    }
    this.#contentSize += size;
    this.#entry(size);
  }

  /** `size` bytes of data start at #next; the next header follows them and their padding. */
  #entry(size: number): void {
    this.#dataEnd = this.#next + size;
    this.#next = this.#dataEnd + ((BLOCK - (size % BLOCK)) % BLOCK);
  }
}
