/**
 * The vocabulary of the filesystem diff: what a path is (a stat-like entry),
 * a tree of them that can be read one directory at a time, and a change.
 * @module
 */

/** What a path is. `other` is a special file whose kind the source does not say (a tar header without type bits). */
export type FileType = "file" | "dir" | "symlink" | "fifo" | "char" | "block" | "socket" | "other";

/**
 * One path of a tree, stat-like: the fields Docker's change detection
 * compares, plus what a layer writer needs.
 */
export interface TreeEntry {
  type: FileType;
  /** Permission bits (`mode & 0o7777`: rwx, setuid, setgid, sticky); no type bits. */
  mode: number;
  /** Bytes of a regular file (0 for everything else). */
  size: number;
  /** Owner and group, as the tree's consumer should see them (container IDs when an identity mapping applied). */
  uid: number;
  gid: number;
  /** Modification time in seconds since the epoch (fractional when the source keeps sub-second times). */
  mtime: number;
  /** Target of a symbolic link. */
  link?: string;
  /** Content digest of a regular file (`sha256:…`), when the source knows it (used by `compareContent`). */
  digest?: string;
  /** Device number of a char or block device (Linux `rdev`). */
  rdev?: number;
  /**
   * Identity of the file's inode when several paths share it (hard links):
   * equal keys are the same file. Absent for a file with one name.
   */
  inode?: string;
}

/** A tree read one directory at a time (the *lower* side of a diff, or the upper). */
export interface Tree {
  /**
   * The children of the directory `path` (`""` is the root; no leading or
   * trailing slash), by name; undefined when `path` is not a directory of
   * the tree.
   */
  readDir(path: string): Promise<ReadonlyMap<string, TreeEntry> | undefined>;
  /** The bytes of the regular file `path`, streamed (absent when the tree has no contents, e.g. a list of tar headers). */
  open?(path: string): AsyncIterable<Uint8Array>;
  /** The whole bytes of a small regular file in one read (the layer writer uses it for files of at most 1 MiB: far fewer calls than a stream). */
  read?(path: string): Promise<Uint8Array>;
}

/** What happened to a path between the lower and the upper tree (`docker diff`'s A, C, D). */
export type ChangeKind = "added" | "changed" | "removed";

/** One changed path. */
export interface Change {
  /** Relative path, `/`-separated, no leading slash. */
  path: string;
  kind: ChangeKind;
  /** The upper tree's entry (absent for `removed`). */
  entry?: TreeEntry;
  /** The lower tree's entry (absent for `added`). */
  lower?: TreeEntry;
  /**
   * A directory of both trees none of whose lower children remain (removed
   * or removed and re-created): the layer marks it opaque
   * (`.wh..wh..opq`) instead of a whiteout per child. Its removed children
   * are still listed (as `removed`), for `docker diff`-style output.
   */
  opaque?: boolean;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Byte order of UTF-8 names (what `ls` in the C locale and Go's
 * `filepath.Walk` sort by). JavaScript's string order (UTF-16 code units)
 * is the same order except where a name has a character beyond U+FFFF
 * (a surrogate pair): only then are the names encoded and compared as bytes.
 */
export function compareNames(a: string, b: string): number {
  if (SURROGATE.test(a) || SURROGATE.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `dir` + `/` + `name`, with `""` as the root. */
export function joinPath(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}
