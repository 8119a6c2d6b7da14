/**
 * A deterministic layer tar of a list of changes, streamed with tar-stream:
 * the changes' order (parents before children), whiteouts for removals,
 * an opaque marker for an opaque directory, hard links inside the layer as
 * hard links, fixed mtimes unless asked to keep them, owners as the entries
 * say (or one fixed owner). Memory holds one chunk of one file, whatever
 * the files' sizes.
 * @module
 */
import { Readable } from "node:stream";
import { FailedPreconditionError } from "@berth/digest";
import { pack as tarPack } from "tar-stream";
import { DiffErrorCode } from "../errors.js";
import type { Owner } from "./idmap.js";
import type { Change, Tree, TreeEntry } from "./types.js";

/** Name prefix of a whiteout (OCI image spec, Docker, overlayfs exports): `dir/.wh.name` removes `dir/name`. */
export const WHITEOUT_PREFIX = ".wh.";
/** Name of the opaque marker: `dir/.wh..wh..opq` hides everything the layers below have in `dir`. */
export const OPAQUE_MARKER = ".wh..wh..opq";

/** Options of {@link writeLayer}. */
export interface WriteLayerOptions {
  /** mtime of every entry, seconds since the epoch (SOURCE_DATE_EPOCH's role). Default 0. */
  mtime?: number;
  /** Keep each entry's own mtime (whole seconds) instead; whiteouts still get `mtime`. */
  keepMtimes?: boolean;
  /** One owner for every entry (e.g. 0:0); default the entries' owners. */
  owner?: Owner;
  /** Write char and block devices (default true); false leaves them out, as `berth import DIR` does. */
  devices?: boolean;
  /** Stop writing: the stream fails with the signal's reason. */
  signal?: AbortSignal;
}

type Header = Parameters<ReturnType<typeof tarPack>["entry"]>[0];

/** File-type bits, given with the permissions so that a mode of 0 stays 0 (tar-stream writes `mode & 0o7777`, but replaces a mode of 0 by a default). */
const TYPE_BITS: Record<string, number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000, fifo: 0o010000, char: 0o020000, block: 0o060000 };

/** Linux `major()` / `minor()` of a device number. */
function major(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function minor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

/**
 * The layer tar of `changes` (as {@link diffTrees} gives them), reading file
 * contents from `upper`. Entries come in the order of `changes`:
 *
 * - `added`/`changed` directories as `path/`, followed by
 *   `path/.wh..wh..opq` when the change is opaque; files with their bytes
 *   (the first path of a hard-link group in the layer holds the data, the
 *   others are hard links to it, as dockerd writes them); symbolic links;
 *   fifos; devices unless `devices: false`; sockets are left out (tar has
 *   no type for them, Docker skips them too);
 * - `removed` paths as whiteouts `dir/.wh.name` (mode 0, root-owned),
 *   except under an opaque directory of this layer, whose marker already
 *   hides them.
 *
 * The same changes over the same files give the same bytes.
 * @throws FailedPreconditionError `ERR_NO_CONTENT` (through the stream) when a
 *   file must be written and `upper` cannot open it, or a file's size no longer
 *   matches its entry (it changed while the layer was written)
 */
export function writeLayer(upper: Pick<Tree, "open" | "read">, changes: Iterable<Change> | AsyncIterable<Change>, opts: WriteLayerOptions = {}): AsyncIterable<Uint8Array> {
  const fixed = new Date((opts.mtime ?? 0) * 1000);
  const pack = tarPack();
  const signal = opts.signal;
  const onAbort = () => pack.destroy(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
  signal?.addEventListener("abort", onAbort, { once: true });
  (async () => {
    signal?.throwIfAborted();
    const opaque = new Set<string>();
    const firstOfInode = new Map<string, string>();
    for await (const c of changes) {
      signal?.throwIfAborted();
      const slash = c.path.lastIndexOf("/");
      const parent = slash < 0 ? "" : c.path.slice(0, slash);
      if (c.kind === "removed") {
        if (opaque.has(parent)) continue;
        const name = `${parent === "" ? "" : `${parent}/`}${WHITEOUT_PREFIX}${c.path.slice(slash + 1)}`;
        await add(pack, { name, type: "file", mode: TYPE_BITS.file!, uid: 0, gid: 0, mtime: fixed, size: 0 });
        continue;
      }
      const e = c.entry;
      if (!e) continue;
      const base = header(c.path, e, fixed, opts);
      switch (e.type) {
        case "dir":
          await add(pack, { ...base, name: `${c.path}/`, type: "directory" });
          if (c.opaque) {
            opaque.add(c.path);
            await add(pack, { name: `${c.path}/${OPAQUE_MARKER}`, type: "file", mode: TYPE_BITS.file!, uid: 0, gid: 0, mtime: fixed, size: 0 });
          }
          break;
        case "symlink":
          await add(pack, { ...base, type: "symlink", linkname: e.link ?? "" });
          break;
        case "fifo":
          await add(pack, { ...base, type: "fifo" });
          break;
        case "char":
        case "block":
          if (opts.devices === false) break;
          await add(pack, { ...base, type: e.type === "char" ? "character-device" : "block-device", devmajor: major(e.rdev ?? 0), devminor: minor(e.rdev ?? 0) });
          break;
        case "file": {
          const first = e.inode !== undefined ? firstOfInode.get(e.inode) : undefined;
          if (first !== undefined) {
            await add(pack, { ...base, type: "link", linkname: first });
            break;
          }
          if (e.inode !== undefined) firstOfInode.set(e.inode, c.path);
          await addFile(pack, { ...base, type: "file", size: e.size }, upper, c.path);
          break;
        }
        default:
          // sockets and unknown kinds: tar has no entry for them
          break;
      }
    }
    pack.finalize();
  })()
    .catch((err: unknown) => pack.destroy(err as Error))
    .finally(() => signal?.removeEventListener("abort", onAbort));
  return pack as AsyncIterable<Uint8Array>;
}

function header(path: string, e: TreeEntry, fixed: Date, opts: WriteLayerOptions): Header {
  const owner = opts.owner ?? { uid: e.uid, gid: e.gid };
  return {
    name: path,
    mode: (TYPE_BITS[e.type] ?? 0) | e.mode,
    uid: owner.uid,
    gid: owner.gid,
    mtime: opts.keepMtimes ? new Date(Math.floor(e.mtime) * 1000) : fixed,
  };
}

/** An entry without a body (an empty regular file — a whiteout, a marker — gets an empty buffer, or tar-stream would wait for one). */
function add(pack: ReturnType<typeof tarPack>, h: Header): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (h.type === "file") pack.entry(h, EMPTY, cb);
    else pack.entry(h, cb);
  });
}

const EMPTY = Buffer.alloc(0);

/** Files up to this size are read whole (`Tree.read`) and written as one buffer. */
const SMALL_FILE = 1 << 20;

/** One file's bytes into the tar, with backpressure; exactly `h.size` bytes or an error. */
async function addFile(pack: ReturnType<typeof tarPack>, h: Header, upper: Pick<Tree, "open" | "read">, path: string): Promise<void> {
  const size = h.size ?? 0;
  if (upper.read && size <= SMALL_FILE) {
    const bytes = await upper.read(path);
    if (bytes.length !== size) {
      throw new FailedPreconditionError(`${path}: ${bytes.length} bytes, not the ${size} it had when diffed (changed while the layer was written)`, {
        code: DiffErrorCode.NO_CONTENT,
        details: { path, size },
      });
    }
    return new Promise<void>((resolve, reject) => {
      pack.entry(h, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (err) => (err ? reject(err) : resolve()));
    });
  }
  return streamFile(pack, h, upper, path);
}

/** A larger file, streamed: memory is one chunk whatever its size. */
function streamFile(pack: ReturnType<typeof tarPack>, h: Header, upper: Pick<Tree, "open">, path: string): Promise<void> {
  if (!upper.open) {
    return Promise.reject(new FailedPreconditionError(`${path}: the upper tree cannot give file contents`, { code: DiffErrorCode.NO_CONTENT }));
  }
  const size = h.size ?? 0;
  const source = upper.open(path);
  const changed = (n: string) =>
    new FailedPreconditionError(`${path}: ${n} than the ${size} bytes it had when diffed (changed while the layer was written)`, {
      code: DiffErrorCode.NO_CONTENT,
      details: { path, size },
    });
  async function* exactly(): AsyncGenerator<Uint8Array> {
    let n = 0;
    for await (const chunk of source) {
      n += chunk.length;
      if (n > size) throw changed("longer");
      yield chunk;
    }
    if (n !== size) throw changed("shorter");
  }
  return new Promise<void>((resolve, reject) => {
    const sink = pack.entry(h, (err) => (err ? reject(err) : resolve()));
    sink.on("error", reject);
    const src = Readable.from(exactly(), { objectMode: false });
    src.on("error", (err) => {
      sink.destroy(err);
      reject(err);
    });
    src.pipe(sink as unknown as NodeJS.WritableStream);
  });
}
