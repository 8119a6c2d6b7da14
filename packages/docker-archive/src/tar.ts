/**
 * Tar reading on top of tar-stream, with berth's hostile-input checks, and a
 * tiny ustar header writer for byte-exact, size-predictable output.
 *
 * Reader: the tar format itself (ustar, PAX `path`/`linkpath`/`size`, GNU
 * long names/links `L`/`K`, base-256 numbers) is parsed by tar-stream's
 * `extract()`. On top: names normalized and refused when absolute or with
 * `..` (`ERR_UNSAFE_PATH`), the input fed with backpressure, reading stops at
 * the end-of-archive block (whatever follows is ignored, as GNU tar and Go's
 * archive/tar do), and tar-stream's errors mapped to typed ones
 * (`ERR_TRUNCATED`, `ERR_INVALID_TAR`).
 *
 * Writer: ustar headers only (every name berth writes fits in 100 bytes, or
 * 155 + 100 with the prefix field), so the size of an archive is
 * `sum(512 + pad512(size)) + 1024`, known before a byte is written.
 * @module
 */
import { type ByteSource, chunksOf } from "@berth/digest";
import { type Extract, extract, type Header } from "tar-stream";
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
  /** Byte offset of the body in the (uncompressed) archive. */
  dataOffset: number;
  /**
   * The body, as chunks. Consume it fully or not at all before asking for the
   * next entry (an unconsumed body is skipped).
   */
  body(): AsyncGenerator<Uint8Array>;
}

/** Limits of the reader. */
export interface TarReadOptions {
  /**
   * Largest PAX extended header or GNU long name accepted (default 1 MiB),
   * checked on the decoded records; tar-stream itself refuses extended
   * headers over 4 MiB before decoding them.
   */
  maxExtendedHeader?: number;
  /**
   * Called when an entry's body was not read, with where the next header
   * starts: a seekable source (see `FileSource.skipTo`) can then yield zeros
   * for the rest of the body instead of reading it.
   */
  skipBody?: (nextHeader: number) => void;
}

const BLOCK = 512;
const padOf = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

/** tar-stream's decoded header, as it really is: number fields it cannot parse are null or NaN, and extract() adds `byteOffset`. */
type ExtractHeader = Omit<Header, "size" | "mode" | "linkname" | "pax"> & {
  size: number | null;
  mode: number | null;
  linkname: string | null;
  pax: Record<string, string> | null;
  byteOffset?: number;
};
/** One entry as tar-stream's extract() yields it: a readable of the body with its header. */
type TarStreamEntry = Extract extends AsyncIterable<infer S> ? S : never;

/**
 * A block tar-stream decodes as "no header": every byte zero except perhaps
 * the checksum field. The first one where a header belongs ends the archive.
 */
function isEndBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if ((i < 148 || i >= 156) && b[i] !== 0) return false;
  return true;
}

/**
 * Feeds a chunk source into tar-stream's extract() with backpressure, and
 * keeps the bytes from the next expected header position on, so the reader
 * can look at that block before tar-stream parses it.
 */
class Feed {
  readonly #it: AsyncIterator<Uint8Array>;
  readonly #ex: Extract;
  /** Bytes written into extract() so far. */
  fed = 0;
  /** Where the next header block starts. */
  next = 0;
  /** Fed chunks that reach past `next` (contiguous). */
  #window: Array<{ start: number; buf: Uint8Array }> = [];
  /** Feed at least this far, even if extract() has not drained. */
  #want = 0;
  #needDrain = false;
  #closed = false;
  #reading = false;
  /** The source ended or failed. */
  done = false;
  failed = false;
  error: unknown;
  #wake: () => void = () => {};
  #changed: Promise<void> = this.#pulse();
  readonly #pumping: Promise<void>;

  constructor(source: AsyncIterable<Uint8Array>, ex: Extract) {
    this.#it = source[Symbol.asyncIterator]();
    this.#ex = ex;
    ex.on("drain", () => {
      this.#needDrain = false;
      this.#signal();
    });
    ex.on("close", () => this.#signal());
    this.#pumping = this.#pump();
  }

  #pulse(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
  }

  #signal(): void {
    const wake = this.#wake;
    this.#changed = this.#pulse();
    wake();
  }

  async #pump(): Promise<void> {
    let finished = false;
    try {
      for (;;) {
        while (!this.#closed && !this.#ex.destroyed && this.#needDrain && this.fed >= this.#want) await this.#changed;
        if (this.#closed || this.#ex.destroyed) break;
        this.#reading = true;
        const r = await this.#it.next();
        this.#reading = false;
        if (r.done) {
          finished = true;
          this.done = true;
          if (!this.#closed) this.#ex.end(null); // no last chunk (streamx types want an argument)
          break;
        }
        if (this.#closed) break;
        const chunk = r.value;
        if (chunk.length === 0) continue;
        const start = this.fed;
        this.fed += chunk.length;
        if (this.fed > this.next) this.#window.push({ start, buf: chunk });
        this.#needDrain = true;
        if (this.#ex.write(chunk)) this.#needDrain = false;
        this.#signal();
      }
    } catch (err) {
      finished = true;
      this.failed = true;
      this.error = err;
      this.#ex.destroy(err as Error);
    } finally {
      this.#reading = false;
      this.done = true;
      this.#signal();
    }
    if (!finished) {
      try {
        await this.#it.return?.();
      } catch {
        // the reader is closing; a failure to release the source changes nothing
      }
    }
  }

  /**
   * The 512 bytes at `next`, or, when the source ends first, how many bytes
   * past `next` it had (negative: it ended before `next`).
   */
  async peek(): Promise<Uint8Array | number> {
    const end = this.next + BLOCK;
    this.#want = end;
    this.#signal();
    while (this.fed < end && !this.done) await this.#changed;
    if (this.failed) throw this.error;
    if (this.fed < end) return this.fed - this.next;
    let pos = this.next;
    let out: Uint8Array | undefined;
    for (const { start, buf } of this.#window) {
      if (start + buf.length <= pos) continue;
      const off = pos - start;
      const take = Math.min(buf.length - off, end - pos);
      if (out === undefined && take === BLOCK) return buf.subarray(off, off + BLOCK);
      out ??= new Uint8Array(BLOCK);
      out.set(buf.subarray(off, off + take), pos - this.next);
      pos += take;
      if (pos === end) break;
    }
    return out!;
  }

  /** The next header starts at `pos`. */
  advance(pos: number): void {
    this.next = pos;
    const w = this.#window;
    let drop = 0;
    while (drop < w.length && w[drop]!.start + w[drop]!.buf.length <= pos) drop++;
    if (drop) w.splice(0, drop);
  }

  /** Stop feeding, destroy extract(), release the source (unless a read of it is pending). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#signal();
    this.#ex.destroy();
    if (!this.#reading) await this.#pumping;
  }
}

/** tar-stream's (untyped) errors as typed ones; the source's own errors win. */
function tarError(err: unknown, feed: Feed, what: string): unknown {
  if (feed.failed) return feed.error;
  if (typeof (err as { code?: unknown })?.code === "string") return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (msg === "Unexpected end of data") return truncated(what);
  if (/^(Invalid tar header|Invalid header|Header exceeds max size)/.test(msg)) return invalidTar(msg, feed.next);
  return err;
}

/**
 * tar-stream decodes a number field it cannot parse as null or NaN, and the
 * base-256 encoding of -1 as -0; none of those (nor negatives, nor values
 * beyond 2^53) is a size or a mode.
 */
function checkedNumber(n: number | null, field: string, offset: number): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0 || Object.is(n, -0)) throw invalidTar(`bad ${field}`, offset);
  return n;
}

const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8");

/**
 * Stream the entries of a tar archive. Each entry's `body()` must be consumed
 * before the next entry is requested (or it is skipped).
 *
 * The format is parsed by tar-stream's `extract()`; on top of it: names are
 * normalized ({@link normalizeEntryName}, `ERR_UNSAFE_PATH`), reading stops
 * at the end-of-archive block (trailing bytes are ignored), input that ends
 * on a block boundary without that block is accepted (as Go's archive/tar,
 * which `docker load` uses, does), input that ends inside a header, an
 * extended header or a body is `ERR_TRUNCATED`, and a corrupt header
 * (checksum, number fields, PAX size) is `ERR_INVALID_TAR`.
 */
export async function* readTar(source: ByteSource, options: TarReadOptions = {}): AsyncGenerator<TarEntry> {
  const maxExt = options.maxExtendedHeader ?? 1 << 20;
  // highWaterMark 1: feed the next chunk only once extract() has taken the
  // last one, so nothing is read ahead of what the parser needs.
  // allowUnknownFormat: accept v7 headers (no ustar magic), as before.
  const ex = extract({ allowUnknownFormat: true, highWaterMark: 1 } as Parameters<typeof extract>[0]);
  const entries = ex[Symbol.asyncIterator]();
  const feed = new Feed(chunksOf(source), ex);
  let where = "tar header";
  try {
    for (;;) {
      const block = await feed.peek();
      if (typeof block === "number") {
        // Input ended on a block boundary without the end-of-archive marker:
        // accepted, as Go's archive/tar (what docker load uses) does.
        if (block === 0) return;
        if (block < 0) throw truncated(`${where}: ${-block} bytes missing`);
        throw truncated(`tar header at byte ${feed.next}: expected 512 bytes, got ${block}`);
      }
      // End-of-archive marker. Anything after it (a second zero block,
      // padding to a record size, other bytes) is ignored, as tar does.
      if (isEndBlock(block)) return;
      let r: IteratorResult<TarStreamEntry>;
      try {
        r = await entries.next();
      } catch (err) {
        throw tarError(err, feed, `tar header at byte ${feed.next}`);
      }
      if (r.done) throw truncated("extended header without its entry");
      const stream = r.value;
      const h = stream.header as unknown as ExtractHeader;
      if (typeof h.byteOffset !== "number") throw new Error("tar-stream did not report the entry's byteOffset");
      const offset = h.byteOffset - BLOCK;
      const rawName = h.name;
      const size = checkedNumber(h.size, "size", offset);
      const paxSize = h.pax?.size;
      if (paxSize !== undefined && !/^[0-9]+$/.test(paxSize)) throw invalidTar("bad PAX size", offset);
      const mode = checkedNumber(h.mode, "mode", offset);
      const mtimeMs = h.mtime.getTime();
      if (!Number.isFinite(mtimeMs)) throw invalidTar("bad mtime", offset);
      let ext = Math.max(utf8Length(rawName), utf8Length(h.linkname ?? ""));
      if (h.pax) {
        let paxBytes = 0;
        for (const [k, v] of Object.entries(h.pax)) paxBytes += utf8Length(k) + utf8Length(v) + 3;
        ext = Math.max(ext, paxBytes);
      }
      if (ext > maxExt) throw invalidTar(`extended header of ${ext} bytes exceeds ${maxExt}`, offset);
      // Where the next header starts: tar-stream reads no body for
      // directories, and `size` bytes plus padding for everything else.
      feed.advance(h.byteOffset + (size === 0 || h.type === "directory" ? 0 : size + padOf(size)));
      let type: TarEntryType;
      switch (h.type) {
        case "file":
        case "contiguous-file":
          type = "file";
          break;
        case "link":
          type = "hardlink";
          break;
        case "symlink":
          type = "symlink";
          break;
        case "directory":
          type = "directory";
          break;
        default:
          type = "other";
      }
      // Old (v7) tars mark directories with a trailing slash on a "file"
      // (tar-stream checks the name before PAX / GNU long names apply).
      if (type === "file" && rawName.endsWith("/")) type = "directory";
      // Only regular files (and unknown types) carry data here; bytes a link
      // or directory header claims are skipped, as Go's archive/tar does.
      const bodySize = type === "hardlink" || type === "symlink" || type === "directory" ? 0 : size;
      const name = normalizeEntryName(rawName);
      where = `entry ${JSON.stringify(rawName)}`;
      const what = where;
      let consumed = false;
      let started = false;
      const entry: TarEntry = {
        rawName,
        name,
        type,
        size: bodySize,
        mode,
        mtime: Math.floor(mtimeMs / 1000),
        offset,
        dataOffset: h.byteOffset,
        body: () => {
          if (started) throw new Error(`tar entry ${rawName}: body() called twice`);
          started = true;
          return (async function* () {
            if (bodySize > 0) {
              try {
                for await (const chunk of stream) yield chunk as Uint8Array;
              } catch (err) {
                throw tarError(err, feed, what);
              }
            }
            consumed = true;
          })();
        },
      };
      if (type === "hardlink" || type === "symlink") entry.linkname = h.linkname ?? "";
      yield entry;
      if (!started && bodySize > 0) options.skipBody?.(feed.next);
      if (!started || bodySize === 0) stream.resume();
      else if (!consumed) throw new Error(`tar entry ${rawName}: body abandoned half-read`);
    }
  } finally {
    await feed.close();
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
