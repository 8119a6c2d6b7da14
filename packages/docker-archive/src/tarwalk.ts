/**
 * A header-only tar reader: the entries of a tar without their bodies, for
 * listings (the image explorer's layer trees). Bodies are skipped by
 * arithmetic — never copied, hashed or handed out — so a layer of 30,000
 * small files costs the time to read (or decompress) its bytes and parse
 * 30,000 header blocks, nothing per body byte.
 *
 * It decodes what {@link readTar} decodes (ustar with its prefix field, v7,
 * GNU `L`/`K` long names and links, PAX `path`/`linkpath`/`size`, base-256
 * numbers, a trailing slash on a v7 file as a directory), normalizes names
 * the same way ({@link normalizeEntryName}, `ERR_UNSAFE_PATH`), stops at the
 * first end-of-archive block and accepts input that ends on a block boundary
 * without one. Hostile input gets typed errors: a bad checksum or number
 * field, a malformed PAX record, or an extended header over the limit is
 * `ERR_INVALID_TAR`; input that ends inside a header, an extended header or
 * a body is `ERR_TRUNCATED`. Memory: one header block and at most one
 * extended header (≤ the limit) are buffered, whatever the tar's size.
 * @module
 */
import { type ByteSource, chunksOf } from "@berth/digest";
import { parseTarNumber, tarChecksumOk } from "@berth/layer-store";
import { invalidTar, truncated } from "./errors.js";
import { normalizeEntryName, type TarEntryType } from "./tar.js";

/** One tar entry's header, as {@link TarHeaderWalker} reports it (no body). */
export interface TarHeaderEntry {
  /** Name as written (after PAX / GNU long-name processing). */
  rawName: string;
  /** Normalized name (see {@link normalizeEntryName}); the archive root is `""`. */
  name: string;
  type: TarEntryType;
  /** Body size in bytes (0 for directories and links, as {@link readTar} reports it). */
  size: number;
  /** Link target as written (symlinks and hard links). */
  linkname?: string;
  mode: number;
  uid: number;
  gid: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** Byte offset of the entry's header in the (uncompressed) tar. */
  offset: number;
}

/** Limits of the header walker. */
export interface TarWalkOptions {
  /** Largest PAX extended header or GNU long name/link accepted (default 1 MiB, Go's archive/tar limit). */
  maxExtendedHeader?: number;
}

const BLOCK = 512;
const padOf = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;
const utf8 = new TextDecoder();
const USTAR = [0x75, 0x73, 0x74, 0x61, 0x72, 0x00]; // "ustar\0"

/** A NUL-terminated string field. */
function field(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return utf8.decode(b.subarray(off, end));
}

function isUstar(h: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (h[257 + i] !== USTAR[i]) return false;
  return true;
}

/** tar-stream's end-of-archive test (what readTar uses): every byte zero but perhaps the checksum field. */
function isEndBlock(h: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if ((i < 148 || i >= 156) && h[i] !== 0) return false;
  return true;
}

/** The records of a PAX extended header (`<len> <key>=<value>\n`); malformed records are `ERR_INVALID_TAR`. */
function paxRecords(data: Uint8Array, offset: number): Map<string, string> {
  const out = new Map<string, string>();
  let p = 0;
  while (p < data.length && data[p] !== 0) {
    let q = p;
    let len = 0;
    while (q < data.length && data[q]! >= 0x30 && data[q]! <= 0x39 && q - p < 16) len = len * 10 + (data[q++]! - 0x30);
    if (q === p || data[q] !== 0x20 || len <= q - p + 1 || p + len > data.length || data[p + len - 1] !== 0x0a) {
      throw invalidTar("malformed PAX record", offset);
    }
    const rec = utf8.decode(data.subarray(q + 1, p + len - 1));
    const eq = rec.indexOf("=");
    if (eq <= 0) throw invalidTar("malformed PAX record", offset);
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    p += len;
  }
  return out;
}

/** What a type flag is (tar-stream's mapping, as readTar reports it). */
function entryType(flag: number): TarEntryType {
  switch (flag) {
    case 0x30: // '0'
    case 0x00:
    case 0x37: // '7' contiguous
      return "file";
    case 0x31:
      return "hardlink";
    case 0x32:
      return "symlink";
    case 0x35:
      return "directory";
    default:
      return "other";
  }
}

/**
 * Incremental header walker: `push` each chunk of the uncompressed tar in
 * order (synchronously: it calls `onEntry` for each header it completes),
 * then `end()`. Throws the typed errors of the module doc from `push` or
 * `end`. Once {@link done} is true (end-of-archive seen), further bytes are
 * ignored and the caller may stop reading.
 */
export class TarHeaderWalker {
  readonly #onEntry: (e: TarHeaderEntry) => void;
  readonly #maxExt: number;
  /** Absolute offset of the next byte pushed. */
  #pos = 0;
  /** Where the next header starts. */
  #next = 0;
  /** Where the current body (or extended header data) ends, before padding. */
  #dataEnd = 0;
  readonly #hdr = new Uint8Array(BLOCK);
  readonly #words = new Uint32Array(this.#hdr.buffer);
  #fill = 0;
  /** Extended header data being collected, and its kind (`x`, `L`, `K`; `g` is collected and ignored). */
  #ext: { kind: number; data: Uint8Array; fill: number; at: number } | undefined;
  #longName: string | undefined;
  #longLink: string | undefined;
  #pax: Map<string, string> | undefined;
  #done = false;

  constructor(onEntry: (e: TarHeaderEntry) => void, options: TarWalkOptions = {}) {
    this.#onEntry = onEntry;
    this.#maxExt = options.maxExtendedHeader ?? 1 << 20;
  }

  /** The end-of-archive block was read: nothing more to parse. */
  get done(): boolean {
    return this.#done;
  }

  /** Feed the next chunk of the uncompressed tar. */
  push(chunk: Uint8Array): void {
    const base = this.#pos;
    this.#pos += chunk.length;
    let i = 0;
    while (i < chunk.length && !this.#done) {
      const at = base + i;
      const ext = this.#ext;
      if (ext && ext.fill < ext.data.length) {
        const take = Math.min(chunk.length - i, ext.data.length - ext.fill);
        ext.data.set(chunk.subarray(i, i + take), ext.fill);
        ext.fill += take;
        i += take;
        if (ext.fill === ext.data.length) this.#extended(ext);
        continue;
      }
      if (at < this.#next) {
        i += Math.min(chunk.length - i, this.#next - at); // body and padding: skipped
        continue;
      }
      const take = Math.min(chunk.length - i, BLOCK - this.#fill);
      this.#hdr.set(chunk.subarray(i, i + take), this.#fill);
      this.#fill += take;
      i += take;
      if (this.#fill === BLOCK) {
        this.#fill = 0;
        this.#header(this.#next);
      }
    }
  }

  /** The input ended: throws `ERR_TRUNCATED` when it ended inside a header, an extended header or a body. */
  end(): void {
    if (this.#done) return;
    const end = this.#pos;
    if (this.#fill > 0) throw truncated(`tar header at byte ${this.#next}: expected 512 bytes, got ${this.#fill}`);
    if (this.#ext) throw truncated(`extended header at byte ${this.#ext.at}`);
    if (this.#longName !== undefined || this.#longLink !== undefined || this.#pax) throw truncated("extended header without its entry");
    // as readTar (tar-stream) does, the padding after the last body must be there too
    if (end < this.#dataEnd) throw truncated(`tar body: ${this.#dataEnd - end} bytes missing`);
    if (end < this.#next) throw truncated(`tar padding: ${this.#next - end} bytes missing`);
  }

  #number(off: number, len: number, name: string, at: number): number {
    const n = parseTarNumber(this.#hdr, off, len);
    if (n === undefined) throw invalidTar(`bad ${name}`, at);
    return n;
  }

  #header(at: number): void {
    const h = this.#hdr;
    if (isEndBlock(h)) {
      this.#done = true;
      return;
    }
    if (!tarChecksumOk(h, this.#words)) throw invalidTar("bad header checksum", at);
    const size = this.#number(124, 12, "size", at);
    const flag = h[156]!;
    this.#next = at + BLOCK;
    // extended headers: PAX (x), PAX global (g), GNU long name (L) and link (K)
    if (flag === 0x78 || flag === 0x67 || flag === 0x4c || flag === 0x4b) {
      if (size > this.#maxExt) throw invalidTar(`extended header of ${size} bytes exceeds ${this.#maxExt}`, at);
      this.#ext = { kind: flag, data: new Uint8Array(size), fill: 0, at };
      this.#skip(size);
      if (size === 0) this.#extended(this.#ext);
      return;
    }
    const mode = this.#number(100, 8, "mode", at);
    const uid = this.#number(108, 8, "uid", at);
    const gid = this.#number(116, 8, "gid", at);
    const mtime = this.#number(136, 12, "mtime", at);
    const pax = this.#pax;
    let rawName = field(h, 0, 100);
    if (isUstar(h) && h[345] !== 0) rawName = `${field(h, 345, 155)}/${rawName}`;
    let type = entryType(flag);
    // old (v7) tars mark directories with a trailing slash (checked before long names apply, as tar-stream does)
    if (flag === 0 && rawName.endsWith("/")) type = "directory";
    rawName = pax?.get("path") ?? this.#longName ?? rawName;
    let linkname = h[157] === 0 ? "" : field(h, 157, 100);
    linkname = pax?.get("linkpath") ?? this.#longLink ?? linkname;
    let bodySize = size;
    const paxSize = pax?.get("size");
    if (paxSize !== undefined) {
      if (!/^[0-9]{1,16}$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) throw invalidTar("bad PAX size", at);
      bodySize = Number(paxSize);
    }
    this.#pax = undefined;
    this.#longName = undefined;
    this.#longLink = undefined;
    // tar-stream (and so readTar) reads no body for a directory, `size` bytes for everything else
    this.#skip(type === "directory" ? 0 : bodySize);
    const e: TarHeaderEntry = {
      rawName,
      name: normalizeEntryName(rawName),
      type,
      size: type === "hardlink" || type === "symlink" || type === "directory" ? 0 : bodySize,
      mode,
      uid,
      gid,
      mtime,
      offset: at,
    };
    if (type === "hardlink" || type === "symlink") e.linkname = linkname;
    this.#onEntry(e);
  }

  /** `size` bytes of data follow the header just read. */
  #skip(size: number): void {
    this.#dataEnd = this.#next + size;
    this.#next = this.#dataEnd + padOf(size);
  }

  #extended(ext: { kind: number; data: Uint8Array; at: number }): void {
    this.#ext = undefined;
    if (ext.kind === 0x78) this.#pax = paxRecords(ext.data, ext.at);
    else if (ext.kind === 0x4c) this.#longName = field(ext.data, 0, ext.data.length);
    else if (ext.kind === 0x4b) this.#longLink = field(ext.data, 0, ext.data.length);
  }
}

/**
 * Walk the headers of a tar from a byte source, calling `onEntry` for each
 * entry; stops reading once the end-of-archive block is seen.
 * @throws DataIntegrityError `ERR_INVALID_TAR` / `ERR_TRUNCATED`; InvalidArgumentError `ERR_UNSAFE_PATH`
 */
export async function walkTarHeaders(source: ByteSource, onEntry: (e: TarHeaderEntry) => void, options: TarWalkOptions = {}): Promise<void> {
  const walker = new TarHeaderWalker(onEntry, options);
  for await (const chunk of chunksOf(source)) {
    walker.push(chunk);
    if (walker.done) break;
  }
  walker.end();
}
