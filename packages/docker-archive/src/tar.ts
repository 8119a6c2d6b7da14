/**
 * A small streaming tar reader and writer, written for hostile input and for
 * byte-exact, size-predictable output.
 *
 * Reader: ustar, PAX (`path`, `linkpath`, `size`), GNU long names/links
 * (`L`/`K`), base-256 sizes. Entry bodies are yielded as sub-arrays of the
 * input chunks (no copies). Truncation and corrupt headers are typed errors.
 *
 * Writer: ustar headers only (every name berth writes fits in 100 bytes),
 * so the size of an archive is `sum(512 + pad512(size)) + 1024`.
 * @module
 */
import { type ByteSource, chunksOf } from "@berth/digest";
import { invalidTar, truncated, unsafeLink, unsafePath } from "./errors.js";

/** Kinds of tar entries the reader distinguishes. */
export type TarEntryType = "file" | "directory" | "symlink" | "hardlink" | "other";

/** One tar entry, as the reader yields it. */
export interface TarEntry {
  /** Name as written in the archive (after PAX / GNU long-name processing). */
  rawName: string;
  /** Normalized name: no `./` prefix, no repeated or trailing slashes (see {@link normalizeEntryName}). */
  name: string;
  type: TarEntryType;
  /** Body size in bytes (0 for non-files). */
  size: number;
  /** Link target as written (symlinks and hardlinks). */
  linkname?: string;
  mode: number;
  mtime: number;
  /** Byte offset of the header in the (uncompressed) archive. */
  offset: number;
  /**
   * The body, as chunks. Consume it fully or not at all before asking for the
   * next entry (an unconsumed body is skipped).
   */
  body(): AsyncGenerator<Uint8Array>;
}

/** Limits of the reader. */
export interface TarReadOptions {
  /** Largest PAX extended header or GNU long name accepted (default 1 MiB). */
  maxExtendedHeader?: number;
}

const BLOCK = 512;
const EMPTY = new Uint8Array(0);
const decoder = new TextDecoder("utf-8");

/** Buffered pull reader over a chunk iterator. */
class ChunkReader {
  readonly #it: AsyncIterator<Uint8Array>;
  #buf: Uint8Array = EMPTY;
  #off = 0;
  #eof = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    while (this.#off >= this.#buf.length) {
      if (this.#eof) return false;
      const r = await this.#it.next();
      if (r.done) {
        this.#eof = true;
        return false;
      }
      this.#buf = r.value;
      this.#off = 0;
    }
    return true;
  }

  /** Read exactly `n` bytes; `null` when the input ends before the first byte, ERR_TRUNCATED when in between. */
  async exact(n: number, what: string): Promise<Uint8Array | null> {
    if (!(await this.#fill())) return null;
    const avail = this.#buf.length - this.#off;
    if (avail >= n) {
      const out = this.#buf.subarray(this.#off, this.#off + n);
      this.#off += n;
      this.position += n;
      return out;
    }
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (!(await this.#fill())) throw truncated(`${what}: expected ${n} bytes, got ${got}`);
      const take = Math.min(n - got, this.#buf.length - this.#off);
      out.set(this.#buf.subarray(this.#off, this.#off + take), got);
      this.#off += take;
      got += take;
      this.position += take;
    }
    return out;
  }

  /** Yield exactly `n` bytes as sub-arrays of the input chunks. */
  async *stream(n: number, what: string): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (!(await this.#fill())) throw truncated(`${what}: ${left} of ${n} bytes missing`);
      const take = Math.min(left, this.#buf.length - this.#off);
      const out = this.#buf.subarray(this.#off, this.#off + take);
      this.#off += take;
      this.position += take;
      left -= take;
      yield out;
    }
  }

  /** Skip exactly `n` bytes. */
  async skip(n: number, what: string): Promise<void> {
    for await (const _ of this.stream(n, what)) {
      // discard
    }
  }

  /** Release the underlying iterator (e.g. after an error). */
  async close(): Promise<void> {
    await this.#it.return?.();
  }
}

function cstring(buf: Uint8Array, start: number, len: number): string {
  let end = start;
  const stop = start + len;
  while (end < stop && buf[end] !== 0) end++;
  return decoder.decode(buf.subarray(start, end));
}

function parseNumber(buf: Uint8Array, start: number, len: number, field: string, offset: number): number {
  // Base-256 (GNU/star): high bit of the first byte set.
  if ((buf[start]! & 0x80) !== 0) {
    if (buf[start] === 0xff) throw invalidTar(`negative ${field}`, offset);
    let v = buf[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + buf[i]!;
    if (!Number.isSafeInteger(v)) throw invalidTar(`${field} too large`, offset);
    return v;
  }
  let v = 0;
  let i = start;
  const stop = start + len;
  while (i < stop && (buf[i] === 0x20 || buf[i] === 0)) i++; // leading spaces/NULs
  let digits = 0;
  for (; i < stop; i++) {
    const c = buf[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw invalidTar(`bad octal digit in ${field}`, offset);
    v = v * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? 0 : v;
}

function checksumOk(h: Uint8Array, offset: number): boolean {
  const stored = parseNumber(h, 148, 8, "checksum", offset);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function isZeroBlock(h: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (h[i] !== 0) return false;
  return true;
}

function parsePax(buf: Uint8Array, offset: number): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < buf.length) {
    if (buf[i] === 0) break;
    let sp = i;
    while (sp < buf.length && buf[sp] !== 0x20) sp++;
    const len = Number.parseInt(decoder.decode(buf.subarray(i, sp)), 10);
    if (!Number.isFinite(len) || len <= 0 || i + len > buf.length) throw invalidTar("bad PAX record length", offset);
    const rec = decoder.decode(buf.subarray(sp + 1, i + len - 1)); // drop trailing \n
    const eq = rec.indexOf("=");
    if (eq < 0) throw invalidTar("bad PAX record", offset);
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

const padOf = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

/**
 * Stream the entries of a tar archive. Each entry's `body()` must be consumed
 * before the next entry is requested (or it is skipped).
 */
export async function* readTar(source: ByteSource, options: TarReadOptions = {}): AsyncGenerator<TarEntry> {
  const maxExt = options.maxExtendedHeader ?? 1 << 20;
  const r = new ChunkReader(chunksOf(source));
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Map<string, string> | undefined;
  try {
    for (;;) {
      const offset = r.position;
      const h = await r.exact(BLOCK, "tar header");
      if (h === null) {
        // Input ended on a block boundary without the end-of-archive marker.
        // Go's archive/tar (what docker load uses) accepts this; so do we,
        // unless an extended header promised an entry that never came.
        if (longName !== undefined || longLink !== undefined || pax !== undefined)
          throw truncated("extended header without its entry");
        return;
      }
      if (isZeroBlock(h)) {
        // End-of-archive marker. Anything after it (a second zero block,
        // padding to a record size) is ignored, as tar does.
        return;
      }
      if (!checksumOk(h, offset)) throw invalidTar("checksum mismatch", offset);
      const flag = String.fromCharCode(h[156]!);
      let size = parseNumber(h, 124, 12, "size", offset);
      const mode = parseNumber(h, 100, 8, "mode", offset);
      const mtime = parseNumber(h, 136, 12, "mtime", offset);
      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        if (size > maxExt) throw invalidTar(`extended header of ${size} bytes exceeds ${maxExt}`, offset);
        const data = size === 0 ? EMPTY : await r.exact(size, "extended header");
        if (data === null) throw truncated("extended header body");
        await r.skip(padOf(size), "padding");
        if (flag === "x") pax = parsePax(data, offset);
        else if (flag === "L") longName = cstring(data, 0, data.length);
        else if (flag === "K") longLink = cstring(data, 0, data.length);
        // "g" (global PAX header) carries nothing berth needs.
        continue;
      }
      let rawName = cstring(h, 0, 100);
      let linkname = cstring(h, 157, 100);
      const magic = cstring(h, 257, 6);
      if (magic === "ustar") {
        const prefix = cstring(h, 345, 155);
        if (prefix) rawName = `${prefix}/${rawName}`;
      }
      if (longName !== undefined) rawName = longName;
      if (longLink !== undefined) linkname = longLink;
      if (pax) {
        const p = pax.get("path");
        if (p !== undefined) rawName = p;
        const lp = pax.get("linkpath");
        if (lp !== undefined) linkname = lp;
        const s = pax.get("size");
        if (s !== undefined) {
          if (!/^[0-9]+$/.test(s) || !Number.isSafeInteger(Number(s))) throw invalidTar("bad PAX size", offset);
          size = Number(s);
        }
      }
      longName = longLink = pax = undefined;
      let type: TarEntryType;
      switch (flag) {
        case "0":
        case "\0":
        case "7":
          type = "file";
          break;
        case "1":
          type = "hardlink";
          break;
        case "2":
          type = "symlink";
          break;
        case "5":
          type = "directory";
          break;
        default:
          type = "other";
      }
      // Old (v7) tars mark directories with a trailing slash on a "file".
      if (type === "file" && rawName.endsWith("/")) type = "directory";
      // Only regular files carry data in practice; honour the size field for
      // everything else too (tar does), so the stream stays in sync.
      const bodySize = type === "hardlink" || type === "symlink" || type === "directory" ? 0 : size;
      const name = normalizeEntryName(rawName);
      let consumed = false;
      let started = false;
      const entry: TarEntry = {
        rawName,
        name,
        type,
        size: bodySize,
        mode,
        mtime,
        offset,
        body: () => {
          if (started) throw new Error(`tar entry ${rawName}: body() called twice`);
          started = true;
          return (async function* () {
            yield* r.stream(bodySize, `entry ${JSON.stringify(rawName)}`);
            consumed = true;
          })();
        },
      };
      if (type === "hardlink" || type === "symlink") entry.linkname = linkname;
      yield entry;
      if (!consumed) {
        if (started) throw new Error(`tar entry ${rawName}: body abandoned half-read`);
        await r.skip(bodySize, `entry ${JSON.stringify(rawName)}`);
      }
      await r.skip(padOf(bodySize), `padding of entry ${JSON.stringify(rawName)}`);
    }
  } finally {
    await r.close();
  }
}

/**
 * Normalize an archive entry name: drop a leading `./`, repeated and trailing
 * slashes and `.` components. Refuses (`ERR_UNSAFE_PATH`) absolute names,
 * `..` components and NUL bytes. The archive root itself normalizes to `""`.
 */
export function normalizeEntryName(raw: string): string {
  if (raw.includes("\0")) throw unsafePath(raw, "name contains a NUL byte");
  if (raw.startsWith("/")) throw unsafePath(raw, "absolute path");
  const parts: string[] = [];
  for (const p of raw.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") throw unsafePath(raw, "path contains '..'");
    parts.push(p);
  }
  return parts.join("/");
}

/**
 * Resolve a link target to the normalized archive path it points at.
 * Symlink targets are relative to the link's directory; hardlink targets are
 * archive paths. Refuses (`ERR_UNSAFE_LINK`) absolute targets and targets that
 * climb out of the archive.
 */
export function resolveLinkTarget(linkName: string, target: string, kind: "symlink" | "hardlink"): string {
  if (target.includes("\0")) throw unsafeLink(linkName, target, "target contains a NUL byte");
  if (target.startsWith("/")) throw unsafeLink(linkName, target, "absolute target");
  const parts = kind === "symlink" ? linkName.split("/").slice(0, -1) : [];
  for (const p of target.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (parts.length === 0) throw unsafeLink(linkName, target, "target escapes the archive");
      parts.pop();
      continue;
    }
    parts.push(p);
  }
  if (parts.length === 0) throw unsafeLink(linkName, target, "target is the archive root");
  return parts.join("/");
}

// ---------------------------------------------------------------------------
// Writer

/** One entry header to write. */
export interface TarHeader {
  name: string;
  type: "file" | "directory" | "symlink";
  size?: number;
  mode?: number;
  mtime?: number;
  linkname?: string;
}

const encoder = new TextEncoder();

function writeString(buf: Uint8Array, s: string, start: number, len: number, field: string): void {
  const b = encoder.encode(s);
  if (b.length > len) throw new RangeError(`tar ${field} ${JSON.stringify(s)} is longer than ${len} bytes`);
  buf.set(b, start);
}

function writeOctal(buf: Uint8Array, v: number, start: number, len: number): void {
  const s = v.toString(8);
  if (s.length <= len - 1) {
    writeString(buf, s.padStart(len - 1, "0"), start, len - 1, "number");
    buf[start + len - 1] = 0;
    return;
  }
  // Base-256 for values that do not fit (sizes ≥ 8 GiB).
  buf[start] = 0x80;
  let x = v;
  for (let i = start + len - 1; i > start; i--) {
    buf[i] = x % 256;
    x = Math.floor(x / 256);
  }
}

/** Encode one 512-byte ustar header (uid/gid 0, no user/group names). */
export function tarHeader(e: TarHeader): Uint8Array {
  const h = new Uint8Array(BLOCK);
  let name = e.name;
  let prefix = "";
  if (encoder.encode(name).length > 100) {
    const cut = name.lastIndexOf("/", 155);
    if (cut <= 0 || encoder.encode(name.slice(cut + 1)).length > 100)
      throw new RangeError(`tar name too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  writeString(h, name, 0, 100, "name");
  const dir = e.type === "directory";
  writeOctal(h, e.mode ?? (dir ? 0o755 : 0o644), 100, 8);
  writeOctal(h, 0, 108, 8);
  writeOctal(h, 0, 116, 8);
  writeOctal(h, e.type === "file" ? (e.size ?? 0) : 0, 124, 12);
  writeOctal(h, e.mtime ?? 0, 136, 12);
  h[156] = e.type === "file" ? 0x30 : e.type === "directory" ? 0x35 : 0x32;
  if (e.linkname) writeString(h, e.linkname, 157, 100, "linkname");
  writeString(h, "ustar\u000000", 257, 8, "magic");
  writeOctal(h, 0, 329, 8);
  writeOctal(h, 0, 337, 8);
  if (prefix) writeString(h, prefix, 345, 155, "prefix");
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  writeString(h, sum.toString(8).padStart(6, "0"), 148, 6, "checksum");
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

/** Zero padding that follows a body of `size` bytes. */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array(padOf(size));
}

/** The end-of-archive marker (two zero blocks). */
export const TAR_TRAILER_SIZE = 2 * BLOCK;

/** Bytes an entry with a body of `size` bytes takes in the archive (header + body + padding). */
export function tarEntrySize(size: number): number {
  return BLOCK + size + padOf(size);
}
