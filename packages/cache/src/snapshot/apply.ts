/**
 * Apply one layer tar onto a directory with Docker's semantics (containerd
 * `pkg/archive` `Apply`): whiteouts `.wh.<name>` remove the entry below,
 * an opaque marker `.wh..wh..opq` empties the lower layers' part of its
 * directory, hard links point at entries already in the tree, symbolic links
 * are created as they are and never followed, modes, owners (when running
 * as root) and mtimes are set, directories' after their contents.
 *
 * Every path goes through {@link SafeRoot}: absolute names, `..` and writes
 * through a symbolic link are refused with typed errors before anything is
 * written there, so a hostile layer writes nothing outside the directory.
 * The tar is streamed: memory grows with the number of entries of the
 * layer (names written and directories to finish), never with its bytes.
 *
 * The calls that create an entry are synchronous, as `tar -x`'s are: a layer
 * of small files costs a handful of system calls per file, and a thread-pool
 * round trip for each (the promise API) made it ten times slower here. The
 * event loop still runs between entries and chunks.
 * @module
 */
import { execFile } from "node:child_process";
import {
  constants as C,
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  type Stats,
  symlinkSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { lstat, readdir, rm } from "node:fs/promises";
import { promisify } from "node:util";
import { type ByteSource, BerthError, InvalidArgumentError, NotFoundError } from "@berth/digest";
import { uncompressedChunks } from "@berth/layer-store";
import { extract, type Header } from "tar-stream";
import { SnapshotErrorCode } from "../errors.js";
import { baseOf, normalizeLayerPath, parentOf, SafeRoot } from "./safepath.js";
import { paxXattrs, setXattrs } from "./xattr.js";
import type { IdentityMapping } from "../diff/idmap.js";
import { encodeRootlessOwner, ROOTLESS_XATTR } from "../diff/rootless.js";

const run = promisify(execFile);
const WHITEOUT = ".wh.";
const WHITEOUT_META = ".wh..wh.";
const OPAQUE = ".wh..wh..opq";
/** How many skipped entries {@link ApplyResult.skipped} lists (the count goes on). */
export const MAX_SKIPPED_LISTED = 1000;

/** Options of {@link applyLayer}. */
export interface ApplyOptions {
  /** Keep the owners of the tar (lchown). Default: when running as root. */
  owners?: boolean;
  /**
   * Where owners are not kept, record each entry's owner other than 0:0 in
   * its `user.rootlesscontainers` attribute (as umoci's rootless unpack
   * does), so a commit of the tree restores it. Default: when owners are not kept.
   */
  recordOwners?: boolean;
  /**
   * Container owners of the layer → host owners on disk (moby's idtools, as
   * for a user-namespaced container): where owners are kept, each entry is
   * chowned to its host owner (`ERR_UNMAPPED_ID` for an owner outside the
   * ranges). Recorded owners stay container IDs. Default: none (as in the tar).
   */
  idMapping?: IdentityMapping;
  /** Create device nodes and fifos (needs root for devices). Default: when running as root. */
  specialFiles?: boolean;
  /** What errors call the layer. Default `layer`. */
  what?: string;
  /** Largest uncompressed size accepted (`ERR_DECOMPRESSION_LIMIT`). Default: none. */
  maxUncompressedSize?: number;
  /** Stop between entries; the directory then holds part of the layer (extract into a scratch directory). */
  signal?: AbortSignal;
}

/** An entry {@link applyLayer} did not create, and why. */
export interface SkippedEntry {
  path: string;
  type: string;
  reason: string;
}

/** What {@link applyLayer} did. */
export interface ApplyResult {
  /** Entries created (files, directories, links, special files). */
  entries: number;
  /** Bytes of regular files written. */
  bytes: number;
  /** Whiteouts and opaque markers applied. */
  whiteouts: number;
  /** Entries not created (devices and fifos when not root, unknown types); at most {@link MAX_SKIPPED_LISTED} listed. */
  skipped: SkippedEntry[];
  skippedCount: number;
  /** Extended attributes (PAX `SCHILY.xattr.*`) set on the entries (with `setfattr`, see `xattr.ts`). */
  xattrs: number;
  /** Extended attributes not set: no `setfattr`, refused (`security.*` without root, a file system without them), a value tar-stream could not read, or their entry not created. */
  xattrsSkipped: number;
  /** Why some were not set (at most five: setfattr's messages, or its absence). */
  xattrNotes: string[];
  /** Entries whose owner in the tar was not applied (not running as root, or `owners: false`), with an owner other than 0:0. */
  ownersNotApplied: number;
  /** Of those, the owners recorded in `user.rootlesscontainers` (symbolic links cannot carry one; one not set counts in `xattrsSkipped`). */
  ownersRecorded: number;
}

interface DirMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Apply the layer `source` (a tar, plain, gzip or zstd; any byte source or
 * Node stream) onto the existing directory `dir`.
 * @throws InvalidArgumentError `ERR_UNSAFE_PATH` (absolute name, `..`, whiteout of `.`/`..`),
 *   `ERR_UNSAFE_LINK` (a write through a symbolic link), `ERR_HARDLINK_TARGET`,
 *   `ERR_NOT_A_DIRECTORY`, `ERR_INVALID_TAR`; NotFoundError `ERR_TARGET_NOT_FOUND`;
 *   CorruptDataError, DecompressionLimitError from the decompression.
 */
export async function applyLayer(dir: string, source: ByteSource, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const what = opts.what ?? "layer";
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new NotFoundError(`${dir}: not a directory to apply ${what} onto`, { code: SnapshotErrorCode.TARGET_NOT_FOUND, details: { path: dir } });
  }
  const owners = opts.owners ?? isRoot();
  const applier = new Applier(new SafeRoot(dir), what, owners, opts.recordOwners ?? !owners, opts.specialFiles ?? isRoot(), opts.idMapping);
  if ((await readdir(dir)).length === 0) applier.fresh.add("");
  const chunks = uncompressedChunks(source, { what, ...(opts.maxUncompressedSize !== undefined ? { maxUncompressedSize: opts.maxUncompressedSize } : {}) });
  // allowUnknownFormat: old v7 headers are read as Go's archive/tar reads them (absent from the typings)
  const ex = extract({ allowUnknownFormat: true } as Parameters<typeof extract>[0]);
  let stop = false;
  let feedError: unknown;
  const feeding = (async () => {
    try {
      for await (const c of chunks) {
        if (stop) break;
        if (!ex.write(c)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              ex.off("drain", done);
              ex.off("close", done);
              resolve();
            };
            ex.on("drain", done);
            ex.on("close", done);
          });
        }
      }
      if (!stop) (ex as unknown as { end(): void }).end();
    } catch (err) {
      feedError = err;
      ex.destroy(err as Error);
    }
  })();
  try {
    for await (const entry of ex) {
      opts.signal?.throwIfAborted();
      await applier.entry(entry.header, entry as AsyncIterable<Uint8Array>);
    }
  } catch (err) {
    stop = true;
    ex.destroy(err as Error);
    await feeding;
    throw tarError(feedError ?? err, what);
  }
  await feeding;
  if (feedError) throw tarError(feedError, what);
  await applier.finish();
  return applier.result;
}

/** An error of the tar reader as `ERR_INVALID_TAR`; ours, the decompressor's and the file system's pass through. */
function tarError(err: unknown, what: string): unknown {
  const code = (err as { code?: unknown })?.code;
  // tar-stream (streamx) fails a body cut short as a destroyed stream
  const streamx = typeof code === "string" && code.startsWith("STREAM_");
  const ours = err instanceof BerthError || code !== undefined || (err as Error)?.name === "AbortError";
  if (ours && !streamx) return err;
  return new InvalidArgumentError(`${what}: not a readable tar (${err instanceof Error ? err.message : String(err)})`, {
    code: SnapshotErrorCode.INVALID_TAR,
    cause: err,
  });
}

/** lstat, undefined when nothing is there. */
function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function drain(body: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of body);
}

/** The state of one layer's application. */
class Applier {
  readonly result: ApplyResult = { entries: 0, bytes: 0, whiteouts: 0, skipped: [], skippedCount: 0, xattrs: 0, xattrsSkipped: 0, xattrNotes: [], ownersNotApplied: 0, ownersRecorded: 0 };
  /** Paths this layer wrote (an opaque marker keeps them). */
  readonly written = new Set<string>();
  /** Directories created empty by this layer (no lstat needed for a new name in them). */
  readonly fresh = new Set<string>();
  /** Directories whose mode, owner and mtime are set at the end. */
  readonly dirs = new Map<string, DirMeta>();
  /** Extended attributes of created entries, set at the end, and the mode of a file that waits for them. */
  readonly xattrs = new Map<string, { attrs: Array<[string, string | Uint8Array]>; mode?: number }>();
  readonly #created = (rel: string) => this.fresh.add(rel);

  constructor(
    readonly safe: SafeRoot,
    readonly what: string,
    readonly owners: boolean,
    readonly recordOwners: boolean,
    readonly special: boolean,
    readonly idMapping: IdentityMapping | undefined,
  ) {}

  async entry(h: Header, body: AsyncIterable<Uint8Array>): Promise<void> {
    const rel = normalizeLayerPath(h.name, `${this.what}: entry`);
    const xattrs: Array<[string, string | Uint8Array]> = paxXattrs(h.pax as Record<string, string> | undefined);
    this.xattrs.delete(rel);
    if (rel === "") {
      this.result.xattrsSkipped += xattrs.length;
      return drain(body); // the root itself: containerd ignores it too
    }
    const base = baseOf(rel);
    const parent = parentOf(rel);
    if (base.startsWith(WHITEOUT)) {
      await drain(body);
      return this.#whiteout(rel, parent, base);
    }
    const parentAbs = (await this.safe.dir(parent, true, this.#created))!;
    const abs = `${parentAbs}/${base}`;
    const type = h.type ?? "file";
    // Something at the path already (a lower layer's, or an earlier entry's): replaced, unless both are directories.
    let existingDir = false;
    if (!this.fresh.has(parent) || this.written.has(rel)) {
      const old = lstatOrUndefined(abs);
      if (old?.isDirectory()) {
        if (type === "directory") existingDir = true;
        else {
          await rm(abs, { recursive: true, force: true });
          this.safe.forget();
          this.fresh.clear();
        }
      } else if (old) unlinkSync(abs);
    }
    this.written.add(rel);
    const mode = (h.mode ?? 0o644) & 0o7777;
    const owner = { uid: h.uid ?? 0, gid: h.gid ?? 0 };
    const { uid, gid } = this.owners && this.idMapping && !this.idMapping.empty ? this.idMapping.toHost(owner, `${this.what}: ${rel}`) : owner;
    const mtime = h.mtime ?? new Date(0);
    const chown = this.owners;
    if (!chown && (owner.uid !== 0 || owner.gid !== 0)) {
      this.result.ownersNotApplied++;
      if (this.recordOwners && type !== "symlink" && type !== "link") {
        xattrs.push([ROOTLESS_XATTR, encodeRootlessOwner(owner)]);
        this.result.ownersRecorded++;
      }
    }
    // without root, a file's user.* attributes need write permission: its mode comes after them
    const modeLater = xattrs.length > 0 && !isRoot();
    switch (type) {
      case "directory": {
        if (!existingDir) {
          mkdirSync(abs, 0o700);
          this.fresh.add(rel);
        }
        this.safe.know(rel);
        this.dirs.set(rel, { mode, uid, gid, mtime });
        await drain(body);
        break;
      }
      case "file":
      case "contiguous-file": {
        const fd = openSync(abs, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body) {
            let off = 0;
            while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
            this.result.bytes += chunk.length;
          }
          if (chown) fchownSync(fd, uid, gid);
          if (!modeLater) fchmodSync(fd, mode);
          futimesSync(fd, mtime, mtime);
        } finally {
          closeSync(fd);
        }
        break;
      }
      case "symlink": {
        await drain(body);
        symlinkSync(h.linkname ?? "", abs);
        if (chown) lchownSync(abs, uid, gid);
        lutimesSync(abs, mtime, mtime);
        break;
      }
      case "link": {
        await drain(body);
        linkSync(await this.#linkTarget(rel, h.linkname ?? ""), abs);
        break;
      }
      case "character-device":
      case "block-device":
      case "fifo": {
        await drain(body);
        const root = isRoot();
        if (!this.special || (type !== "fifo" && !root)) {
          this.#skip(rel, type, root ? "special files not asked for" : "device nodes need root");
          this.result.xattrsSkipped += xattrs.length;
          this.written.delete(rel);
          return;
        }
        const args = type === "fifo" ? ["-m", mode.toString(8), abs] : ["-m", mode.toString(8), abs, type === "block-device" ? "b" : "c", String(h.devmajor ?? 0), String(h.devminor ?? 0)];
        await run(type === "fifo" ? "mkfifo" : "mknod", args);
        if (chown) lchownSync(abs, uid, gid);
        chmodSync(abs, mode);
        lutimesSync(abs, mtime, mtime);
        break;
      }
      default:
        await drain(body);
        this.#skip(rel, type, "entry type not extracted");
        this.result.xattrsSkipped += xattrs.length;
        this.written.delete(rel);
        return;
    }
    if (xattrs.length > 0) this.xattrs.set(rel, { attrs: xattrs, ...(modeLater && type !== "directory" ? { mode } : {}) });
    this.result.entries++;
  }

  /** `.wh.<name>` removes `<name>` from the layers below; `.wh..wh..opq` empties the directory of what they put there. */
  async #whiteout(rel: string, parent: string, base: string): Promise<void> {
    if (base === OPAQUE) {
      this.result.whiteouts++;
      const dirAbs = await this.safe.dir(parent, true, this.#created);
      if (dirAbs === undefined) return;
      let removed = false;
      for (const name of await readdir(dirAbs)) {
        const child = parent ? `${parent}/${name}` : name;
        if (this.written.has(child)) continue;
        await rm(`${dirAbs}/${name}`, { recursive: true, force: true });
        removed = true;
      }
      if (removed) this.safe.forget();
      return;
    }
    if (base.startsWith(WHITEOUT_META)) return; // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to apply
    const name = base.slice(WHITEOUT.length);
    if (name === "" || name === "." || name === "..") {
      throw new InvalidArgumentError(`${this.what}: whiteout ${JSON.stringify(rel)} names ${JSON.stringify(name || ".wh.")}, not an entry`, {
        code: SnapshotErrorCode.UNSAFE_PATH,
        details: { path: rel },
      });
    }
    this.result.whiteouts++;
    const dirAbs = await this.safe.dir(parent, false);
    if (dirAbs === undefined) return; // nothing below to remove
    const target = `${dirAbs}/${name}`;
    const old = await lstat(target).catch(() => undefined);
    if (!old) return;
    await rm(target, { recursive: true, force: true });
    if (old.isDirectory()) this.safe.forget();
    this.written.delete(parent ? `${parent}/${name}` : name);
  }

  /** The absolute path of a hard link's target: inside the tree, reached without links, existing, not a directory. */
  async #linkTarget(rel: string, linkname: string): Promise<string> {
    const target = normalizeLayerPath(linkname, `${this.what}: hard link ${JSON.stringify(rel)} to`);
    const bad = (why: string) =>
      new InvalidArgumentError(`${this.what}: hard link ${JSON.stringify(rel)} to ${JSON.stringify(linkname)}: ${why}`, {
        code: SnapshotErrorCode.HARDLINK_TARGET,
        details: { path: rel, target: linkname },
      });
    if (target === "") throw bad("the target is the root directory");
    const dirAbs = await this.safe.dir(parentOf(target), false);
    if (dirAbs === undefined) throw bad("no such entry in the snapshot");
    const abs = `${dirAbs}/${baseOf(target)}`;
    const st = lstatOrUndefined(abs);
    if (!st) throw bad("no such entry in the snapshot");
    if (st.isDirectory()) throw bad("the target is a directory");
    return abs;
  }

  #skip(path: string, type: string, reason: string): void {
    this.result.skippedCount++;
    if (this.result.skipped.length < MAX_SKIPPED_LISTED) this.result.skipped.push({ path, type, reason });
  }

  /** The absolute path of a directory the layer made, or undefined when a later entry of the layer removed or replaced it. */
  async #dirNow(rel: string): Promise<string | undefined> {
    try {
      return await this.safe.dir(rel, false);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === SnapshotErrorCode.UNSAFE_LINK || code === SnapshotErrorCode.NOT_A_DIRECTORY) return undefined; // replaced later in the layer
      throw err;
    }
  }

  /** Extended attributes, then directories: owner, mode, mtime once nothing more is written into them. */
  async finish(): Promise<void> {
    this.safe.forget();
    if (this.xattrs.size > 0) {
      const items: Array<{ path: string; attrs: Array<[string, string | Uint8Array]>; mode?: number }> = [];
      for (const [rel, { attrs, mode }] of this.xattrs) {
        const dirAbs = await this.#dirNow(parentOf(rel));
        const abs = dirAbs === undefined ? undefined : `${dirAbs}/${baseOf(rel)}`;
        if (abs !== undefined && lstatOrUndefined(abs)) items.push({ path: abs, attrs, ...(mode !== undefined ? { mode } : {}) });
        else this.result.xattrsSkipped += attrs.length; // removed later in the layer
      }
      const r = await setXattrs(items);
      this.result.xattrs += r.applied;
      this.result.xattrsSkipped += r.notApplied;
      this.result.xattrNotes.push(...r.reasons);
      for (const { path, mode } of items) if (mode !== undefined) chmodSync(path, mode);
    }
    for (const [rel, m] of this.dirs) {
      const abs = await this.#dirNow(rel);
      if (abs === undefined) continue; // removed or replaced later in the layer
      if (this.owners) lchownSync(abs, m.uid, m.gid);
      chmodSync(abs, m.mode);
      lutimesSync(abs, m.mtime, m.mtime);
    }
  }
}
