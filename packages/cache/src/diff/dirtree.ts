/**
 * A directory on disk as a {@link Tree}: `lstat` of each child, never
 * following a symbolic link, owners mapped to container IDs when an
 * identity mapping is given, and owners recorded in `user.rootlesscontainers`
 * (by an extraction without root, see `rootless.ts`) taking their place.
 * @module
 */
import { createReadStream, lstatSync, readlinkSync, type Stats } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError } from "@berth/digest";
import { DiffErrorCode } from "../errors.js";
import type { IdentityMapping } from "./idmap.js";
import { type RecordedOwner, readRootlessOwners } from "./rootless.js";
import type { FileType, Tree, TreeEntry } from "./types.js";

/** Options of {@link directoryTree}. */
export interface DirectoryTreeOptions {
  /** Host owners on disk → container owners in the entries (`ERR_UNMAPPED_ID` for an owner outside it). */
  idMapping?: IdentityMapping;
  /**
   * Read the owners recorded in `user.rootlesscontainers` attributes (one
   * `getfattr` run over the tree, on the first `readDir`) and use them
   * instead of those on disk; without an `idMapping`, the current user's
   * and group's files are 0:0 (the tree of an extraction without root, as
   * umoci's rootless mode maps them). Default: when not running as root —
   * where an extraction could not chown and recorded owners instead.
   */
  rootlessOwners?: boolean;
}

function typeOf(st: Stats): FileType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFIFO()) return "fifo";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  if (st.isSocket()) return "socket";
  return "other";
}

/** A stat as a tree entry (the link target is read separately). */
export function entryOfStats(st: Stats, idMapping: IdentityMapping | undefined, what: string): TreeEntry {
  const type = typeOf(st);
  const owner = idMapping && !idMapping.empty ? idMapping.toContainer({ uid: st.uid, gid: st.gid }, what) : { uid: st.uid, gid: st.gid };
  const e: TreeEntry = { type, mode: st.mode & 0o7777, size: type === "file" ? st.size : 0, uid: owner.uid, gid: owner.gid, mtime: st.mtimeMs / 1000 };
  if (type === "char" || type === "block") e.rdev = st.rdev;
  if (type === "file" && st.nlink > 1) e.inode = `${st.dev}:${st.ino}`;
  return e;
}

/**
 * The directory `root` as a tree. Each `readDir` lists one directory and
 * `lstat`s its children; nothing is cached, so memory is one directory's
 * entries.
 */
export function directoryTree(root: string, opts: DirectoryTreeOptions = {}): Tree & { root: string } {
  let recorded: Promise<Map<string, RecordedOwner>> | undefined;
  const rootless = opts.rootlessOwners ?? process.getuid?.() !== 0;
  const me = rootless && !opts.idMapping ? { uid: process.getuid?.(), gid: process.getgid?.() } : undefined;
  return {
    root,
    async readDir(path: string): Promise<ReadonlyMap<string, TreeEntry> | undefined> {
      const owners = rootless ? await (recorded ??= readRootlessOwners(root)) : undefined;
      const abs = path === "" ? root : join(root, path);
      let names: string[];
      try {
        names = await readdir(abs);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOTDIR" || code === "ENOENT") {
          if (path === "") throw new InvalidArgumentError(`${root}: not a directory`, { code: DiffErrorCode.NOT_A_DIRECTORY, cause: err });
          return undefined;
        }
        throw err;
      }
      // one directory's children are stat'ed synchronously (each lstat of a cached inode is a few
      // microseconds; through the thread pool each costs a round trip): the walk yields between directories
      const out = new Map<string, TreeEntry>();
      for (const name of names) {
        const p = join(abs, name);
        const e = entryOfStats(lstatSync(p), opts.idMapping, p);
        if (e.type === "symlink") e.link = readlinkSync(p);
        if (me && e.uid === me.uid) e.uid = 0;
        if (me && e.gid === me.gid) e.gid = 0;
        const r = owners?.get(path === "" ? name : `${path}/${name}`);
        if (r) {
          e.uid = r.uid ?? e.uid;
          e.gid = r.gid ?? e.gid;
        }
        out.set(name, e);
      }
      return out;
    },
    open(path: string): AsyncIterable<Uint8Array> {
      return createReadStream(join(root, path));
    },
    read(path: string): Promise<Uint8Array> {
      return readFile(join(root, path));
    },
  };
}
