/**
 * The image store's metadata on disk: a snapshot plus an append-only journal.
 *
 * ```
 * <root>/images/snapshot.log   compacted state, written atomically (temp + fsync + rename)
 * <root>/images/journal.log    records appended since the snapshot, one per line, fsynced
 * ```
 *
 * Both files are sequences of lines `<crc32 as 8 hex> <JSON array>\n`. The first
 * line is a header `["berth-images",1,"<journal id>"]`; the snapshot ends with
 * `["end",<record count>]`. The journal's header names the journal; it counts
 * only when it equals the id the snapshot names (or there is no snapshot), so a
 * crash in the middle of a compaction (snapshot renamed, old journal not yet
 * replaced) can never apply a record twice.
 *
 * Records (digests are full `sha256:<hex>` strings):
 *
 * | record                                                         | meaning            |
 * |----------------------------------------------------------------|--------------------|
 * | `["c", id, chainID\|null, manifest, manifestSize, configSize, size, platform, createdMs]` | image created |
 * | `["d", id]`                                                    | image deleted (drops its tags and its children's parent links) |
 * | `["p", id, parent\|null]`                                      | parent set / cleared |
 * | `["u", id, ms\|null]`                                          | lastUpdated        |
 * | `["b", id]`                                                    | built locally      |
 * | `["t", ref, id]`                                               | reference set (normalised) |
 * | `["r", ref]`                                                   | reference removed  |
 *
 * Writers append under the `images` cross-process lock; a record is a single
 * `write` followed by `fsync`, and a line is only applied once its newline and
 * CRC are there, so a writer killed mid-append leaves a torn tail that readers
 * ignore and the next writer truncates. Readers never take the lock: before
 * each operation they `fstat` the journal they hold open and apply the lines appended since
 * (no links left means a compaction replaced it: they reload).
 *
 * Opening reads two files, not one per image: at 100,000 images that is ~30 MB
 * of lines parsed in well under the 2 s target (see BENCHMARKS.md).
 * @module
 */
import { closeSync, openSync, readSync, fstatSync, promises as fsp, statSync } from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { randomBytes } from "node:crypto";
import { DataIntegrityError, type Digest, DigestSet, isSha256Digest } from "@berth/digest";
import { ImageStoreErrorCode } from "./errors.js";

/** One image's metadata record. */
export interface ImageRecord {
  id: Digest;
  chainID: Digest | null;
  manifest: Digest;
  manifestSize: number;
  configSize: number;
  /** Sum of the layers' file sizes (dockerd's image size; see `Image.size`). */
  size: number;
  /** `os/architecture[/variant]` from the config. */
  platform: string;
  /** When this store created the record (epoch ms). */
  created: number;
  parent?: Digest;
  lastUpdated?: number;
  builtLocally?: boolean;
}

/** A journal record (see the module comment). */
export type Op =
  | ["c", Digest, Digest | null, Digest, number, number, number, string, number]
  | ["d", Digest]
  | ["p", Digest, Digest | null]
  | ["u", Digest, number | null]
  | ["b", Digest]
  | ["t", string, Digest]
  | ["r", string];

const MAGIC = "berth-images";
const VERSION = 1;

/** A problem found while reading the metadata files (reported by fsck). */
export interface MetaProblem {
  path: string;
  message: string;
  /** True when the problem is a torn tail a writer will truncate (harmless). */
  tornTail?: boolean;
}

function encodeLine(value: unknown): string {
  const json = JSON.stringify(value);
  return `${(crc32(json) >>> 0).toString(16).padStart(8, "0")} ${json}\n`;
}

function decodeLine(line: string): unknown[] | undefined {
  if (line.length < 11 || line[8] !== " ") return undefined;
  const json = line.slice(9);
  const want = Number.parseInt(line.slice(0, 8), 16);
  if (!Number.isFinite(want) || (crc32(json) >>> 0) !== want) return undefined;
  try {
    const v = JSON.parse(json);
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) HEX_VALUE["0123456789abcdef".charCodeAt(i)] = i;

/**
 * {@link decodeLine} on `buf[start, end)` without making strings for the
 * checksum (the hot loop of opening a store: one call per record).
 */
function decodeLineAt(buf: Buffer, start: number, end: number): unknown[] | undefined {
  if (end - start < 11 || buf[start + 8] !== 0x20) return undefined;
  let want = 0;
  for (let i = start; i < start + 8; i++) {
    const v = HEX_VALUE[buf[i]!]!;
    if (v < 0) return undefined;
    want = want * 16 + v;
  }
  if (crc32(buf.subarray(start + 9, end)) >>> 0 !== want) return undefined;
  try {
    const v = JSON.parse(buf.toString("utf8", start + 9, end));
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** In-memory state: images, references and derived indexes. */
export class MetaState {
  readonly images = new Map<Digest, ImageRecord>();
  readonly children = new Map<Digest, Set<Digest>>();
  #ids: DigestSet | undefined;
  /** One string per distinct ChainID / platform (100k images share a few). */
  readonly #intern = new Map<string, string>();

  #interned<T extends string>(s: T): T {
    const have = this.#intern.get(s);
    if (have !== undefined) return have as T;
    this.#intern.set(s, s);
    return s;
  }
  readonly refs = new Map<string, Digest>();
  readonly refsById = new Map<Digest, Set<string>>();
  /** Image ID by manifest digest. */
  readonly byManifest = new Map<Digest, Digest>();

  /**
   * Image IDs with unique-prefix lookup. Built on first use (opening a store
   * does not pay for it), then kept up to date by {@link MetaState.apply}.
   */
  get ids(): DigestSet {
    this.#ids ??= new DigestSet(this.images.keys());
    return this.#ids;
  }

  /** Apply one record; returns false when it makes no sense in this state (ignored). */
  apply(op: unknown[]): boolean {
    switch (op[0]) {
      case "c": {
        // Index access, not destructuring: this runs once per image at open.
        const id = op[1];
        const chainID = op[2];
        const manifest = op[3];
        const manifestSize = op[4];
        const configSize = op[5];
        const size = op[6];
        const platform = op[7];
        const created = op[8];
        if (!isSha256Digest(id) || !isSha256Digest(manifest) || (chainID !== null && !isSha256Digest(chainID))) return false;
        if (typeof manifestSize !== "number" || typeof configSize !== "number" || typeof size !== "number") return false;
        if (this.images.has(id)) return false;
        this.images.set(id, {
          id,
          chainID: chainID === null ? null : this.#interned(chainID as Digest),
          manifest,
          manifestSize,
          configSize,
          size,
          platform: typeof platform === "string" ? this.#interned(platform) : "",
          created: typeof created === "number" ? created : 0,
        });
        this.#ids?.add(id);
        this.byManifest.set(manifest, id);
        return true;
      }
      case "d": {
        const id = op[1] as Digest;
        const rec = this.images.get(id);
        if (!rec) return false;
        for (const child of this.children.get(id) ?? []) {
          const c = this.images.get(child);
          if (c) delete c.parent;
        }
        this.children.delete(id);
        if (rec.parent) this.#unlinkChild(rec.parent, id);
        for (const ref of this.refsById.get(id) ?? []) this.refs.delete(ref);
        this.refsById.delete(id);
        this.images.delete(id);
        this.#ids?.remove(id);
        if (this.byManifest.get(rec.manifest) === id) this.byManifest.delete(rec.manifest);
        return true;
      }
      case "p": {
        const rec = this.images.get(op[1] as Digest);
        const parent = op[2] as Digest | null;
        if (!rec || (parent !== null && !this.images.has(parent))) return false;
        if (rec.parent) this.#unlinkChild(rec.parent, rec.id);
        if (parent === null) {
          delete rec.parent;
        } else {
          rec.parent = parent;
          let set = this.children.get(parent);
          if (!set) this.children.set(parent, (set = new Set()));
          set.add(rec.id);
        }
        return true;
      }
      case "u": {
        const rec = this.images.get(op[1] as Digest);
        if (!rec) return false;
        if (typeof op[2] === "number") rec.lastUpdated = op[2];
        else delete rec.lastUpdated;
        return true;
      }
      case "b": {
        const rec = this.images.get(op[1] as Digest);
        if (!rec) return false;
        rec.builtLocally = true;
        return true;
      }
      case "t": {
        const ref = op[1];
        const id = op[2] as Digest;
        if (typeof ref !== "string" || !this.images.has(id)) return false;
        const old = this.refs.get(ref);
        if (old !== undefined) this.refsById.get(old)?.delete(ref);
        this.refs.set(ref, id);
        let set = this.refsById.get(id);
        if (!set) this.refsById.set(id, (set = new Set()));
        set.add(ref);
        return true;
      }
      case "r": {
        const ref = op[1];
        if (typeof ref !== "string") return false;
        const old = this.refs.get(ref);
        if (old === undefined) return false;
        this.refs.delete(ref);
        const set = this.refsById.get(old);
        set?.delete(ref);
        if (set && set.size === 0) this.refsById.delete(old);
        return true;
      }
      default:
        return false;
    }
  }

  #unlinkChild(parent: Digest, child: Digest): void {
    const set = this.children.get(parent);
    if (!set) return;
    set.delete(child);
    if (set.size === 0) this.children.delete(parent);
  }

  /** The minimal records that rebuild this state (what a snapshot holds). */
  *records(): Generator<Op> {
    for (const r of this.images.values()) {
      yield ["c", r.id, r.chainID, r.manifest, r.manifestSize, r.configSize, r.size, r.platform, r.created];
    }
    for (const r of this.images.values()) {
      if (r.parent) yield ["p", r.id, r.parent];
      if (r.lastUpdated !== undefined) yield ["u", r.id, r.lastUpdated];
      if (r.builtLocally) yield ["b", r.id];
    }
    for (const [ref, id] of this.refs) yield ["t", ref, id];
  }
}

/**
 * Apply the complete lines of `buf` (starting at `bufOffset` within the file).
 * Returns the file offset just past the last newline.
 */
function applyLines(
  buf: Buffer,
  fileOffset: number,
  state: MetaState,
  file: string,
  wantHeader: boolean,
  problems: MetaProblem[],
): { end: number; header: unknown[] | undefined; lines: number; sawEnd: number | undefined } {
  let pos = 0;
  let header: unknown[] | undefined;
  let lines = 0;
  let sawEnd: number | undefined;
  for (;;) {
    const nl = buf.indexOf(10, pos);
    if (nl < 0) break;
    const rec = decodeLineAt(buf, pos, nl);
    if (rec === undefined) {
      problems.push({ path: file, message: `corrupt record at byte ${fileOffset + pos} (bad checksum or JSON), skipped` });
    } else if (wantHeader && lines === 0) {
      header = rec;
    } else if (rec[0] === "end") {
      sawEnd = typeof rec[1] === "number" ? rec[1] : -1;
    } else {
      state.apply(rec);
    }
    lines++;
    pos = nl + 1;
  }
  return { end: fileOffset + pos, header, lines, sawEnd };
}

function readAll(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** Functions the journal needs from the layer store's file utilities. */
export interface MetaFs {
  writeFileAtomic(file: string, data: Uint8Array | string): Promise<void>;
  fsyncDir(dir: string): Promise<void>;
}

/**
 * The metadata journal of one store root, loaded into a {@link MetaState}.
 * Reads are lock-free; {@link Journal.append} must be called under the
 * `images` lock (the caller takes it).
 */
export class Journal {
  readonly dir: string;
  readonly snapshotPath: string;
  readonly journalPath: string;
  state = new MetaState();
  /** Problems seen at the last full load (corrupt lines, torn tails). */
  problems: MetaProblem[] = [];
  /** Journal id the snapshot names ("" when there is no snapshot). */
  #snapshotJournal = "";
  /** Whether the current journal file counts (its header matches). */
  #journalValid = false;
  #journalIno = -1;
  /** Open read descriptor of the journal file the state was read from (fstat tells when it is replaced). */
  #fd: number | undefined;
  #offset = 0;
  #journalLines = 0;
  readonly #fs: MetaFs;

  constructor(root: string, fs: MetaFs) {
    this.dir = path.join(root, "images");
    this.snapshotPath = path.join(this.dir, "snapshot.log");
    this.journalPath = path.join(this.dir, "journal.log");
    this.#fs = fs;
  }

  /** Number of records in the current journal (compaction heuristic). */
  get journalRecords(): number {
    return this.#journalLines;
  }

  /** Load everything from disk (snapshot, then journal). */
  load(): void {
    for (let attempt = 0; ; attempt++) {
      const state = new MetaState();
      const problems: MetaProblem[] = [];
      const snap = readAll(this.snapshotPath);
      let snapshotJournal = "";
      if (snap !== undefined) {
        const r = applyLines(snap, 0, state, this.snapshotPath, true, problems);
        const h = r.header;
        if (!h || h[0] !== MAGIC || h[1] !== VERSION || typeof h[2] !== "string") {
          throw new DataIntegrityError(`image metadata ${this.snapshotPath}: bad header`, {
            code: ImageStoreErrorCode.METADATA_CORRUPT,
            details: { path: this.snapshotPath },
          });
        }
        if (r.sawEnd === undefined || r.end !== snap.length) {
          throw new DataIntegrityError(`image metadata ${this.snapshotPath}: truncated (no end record)`, {
            code: ImageStoreErrorCode.METADATA_CORRUPT,
            details: { path: this.snapshotPath },
          });
        }
        snapshotJournal = h[2];
      }
      let fd: number | undefined;
      try {
        fd = openSync(this.journalPath, "r");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
      if (fd === undefined) {
        this.#commit(state, problems, snapshotJournal, false, -1, 0, 0, undefined);
        return;
      }
      let keep = false;
      try {
        const st = fstatSync(fd);
        const buf = Buffer.allocUnsafe(st.size);
        let off = 0;
        while (off < st.size) {
          const n = readSync(fd, buf, off, st.size - off, off);
          if (n === 0) break;
          off += n;
        }
        const headerEnd = buf.indexOf(10);
        const header = headerEnd >= 0 ? decodeLine(buf.toString("utf8", 0, headerEnd)) : undefined;
        const jid = header && header[0] === MAGIC && typeof header[2] === "string" ? header[2] : undefined;
        const valid = jid !== undefined && (snap === undefined || jid === snapshotJournal);
        if (!valid) {
          if (jid !== undefined && attempt < 3) {
            // A compaction may have replaced both files between our two reads: retry.
            const again = readAll(this.snapshotPath);
            if (again !== undefined && (snap === undefined || !again.equals(snap))) continue;
          }
          // A crash between the snapshot rename and the journal reset: the old
          // journal's records are all in the snapshot. The next writer replaces it.
          this.#commit(state, problems, snapshotJournal, false, st.ino, buf.length, 0, fd);
          keep = true;
          return;
        }
        const r = applyLines(buf.subarray(0, off), 0, state, this.journalPath, true, problems);
        if (r.end < off) {
          problems.push({
            path: this.journalPath,
            message: `torn record at byte ${r.end} (${off - r.end} bytes, a writer was interrupted); ignored`,
            tornTail: true,
          });
        }
        this.#commit(state, problems, snapshotJournal, true, st.ino, r.end, Math.max(0, r.lines - 1), fd);
        keep = true;
        return;
      } finally {
        if (!keep) closeSync(fd);
      }
    }
  }

  #commit(
    state: MetaState,
    problems: MetaProblem[],
    snapshotJournal: string,
    valid: boolean,
    ino: number,
    offset: number,
    lines: number,
    fd: number | undefined,
  ): void {
    if (this.#fd !== undefined && this.#fd !== fd) closeSync(this.#fd);
    this.#fd = fd;
    this.state = state;
    this.problems = problems;
    this.#snapshotJournal = snapshotJournal;
    this.#journalValid = valid;
    this.#journalIno = ino;
    this.#offset = offset;
    this.#journalLines = lines;
  }

  /**
   * Bring the state up to date with what other processes appended. Cheap when
   * nothing changed: one `fstat` of the open journal (a journal replaced by a
   * compaction has no links left: reload).
   */
  refresh(): void {
    const fd = this.#fd;
    if (fd === undefined) {
      // No journal when we loaded: has a writer started one? (no error built when not: this runs per lookup)
      if (statSync(this.journalPath, { throwIfNoEntry: false })) this.load();
      return;
    }
    const st = fstatSync(fd);
    if (st.nlink === 0 || st.size < this.#offset) {
      this.load();
      return;
    }
    if (st.size === this.#offset || !this.#journalValid) return;
    const len = st.size - this.#offset;
    const buf = Buffer.allocUnsafe(len);
    let off = 0;
    while (off < len) {
      const n = readSync(fd, buf, off, len - off, this.#offset + off);
      if (n === 0) break;
      off += n;
    }
    const r = applyLines(buf.subarray(0, off), this.#offset, this.state, this.journalPath, false, this.problems);
    this.#offset = r.end;
    this.#journalLines += r.lines;
  }

  /** Close the journal descriptor (the state stays readable). */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  /**
   * Append records (caller holds the `images` lock and has just refreshed).
   * Truncates a torn tail left by a killed writer, starts a journal when there
   * is none (or a stale one), then writes all lines in one `write` + `fsync`.
   * The records are applied to the in-memory state too.
   */
  async append(ops: Op[]): Promise<void> {
    if (ops.length === 0) return;
    await fsp.mkdir(this.dir, { recursive: true });
    if (!this.#journalValid) await this.#startJournal(this.#snapshotJournal || randomBytes(12).toString("hex"));
    const fh = await fsp.open(this.journalPath, "r+");
    try {
      const st = await fh.stat();
      if (st.ino !== this.#journalIno) {
        throw new DataIntegrityError(`image metadata ${this.journalPath} replaced while the images lock was held`, {
          code: ImageStoreErrorCode.METADATA_RACE,
        });
      }
      if (st.size > this.#offset) await fh.truncate(this.#offset);
      const text = ops.map(encodeLine).join("");
      const buf = Buffer.from(text, "utf8");
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await fh.write(buf, off, buf.length - off, this.#offset + off);
        off += bytesWritten;
      }
      await fh.sync();
      this.#offset += buf.length;
      this.#journalLines += ops.length;
    } finally {
      await fh.close();
    }
    for (const op of ops) this.state.apply(op);
  }

  async #startJournal(id: string): Promise<void> {
    const header = encodeLine([MAGIC, VERSION, id]);
    await this.#fs.writeFileAtomic(this.journalPath, header);
    const fd = openSync(this.journalPath, "r");
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = fd;
    this.#journalIno = fstatSync(fd).ino;
    this.#offset = Buffer.byteLength(header);
    this.#journalValid = true;
    this.#journalLines = 0;
    if (!this.#snapshotJournal) this.#snapshotJournal = "";
  }

  /**
   * Rewrite the state as a new snapshot and start an empty journal (caller
   * holds the lock and has refreshed). Crash-safe at every step.
   */
  async compact(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    const id = randomBytes(12).toString("hex");
    const parts: string[] = [encodeLine([MAGIC, VERSION, id])];
    let n = 0;
    for (const op of this.state.records()) {
      parts.push(encodeLine(op));
      n++;
    }
    parts.push(encodeLine(["end", n]));
    await this.#fs.writeFileAtomic(this.snapshotPath, parts.join(""));
    this.#snapshotJournal = id;
    await this.#startJournal(id);
    this.problems = this.problems.filter((p) => p.path !== this.journalPath && p.path !== this.snapshotPath);
  }

  /** Whether a compaction is worthwhile: the journal holds more records than the state needs. */
  shouldCompact(): boolean {
    const live = this.state.images.size * 1.2 + this.state.refs.size;
    return this.#journalLines > 2000 && this.#journalLines > live;
  }
}
