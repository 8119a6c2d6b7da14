/**
 * A list of entries given by the caller as a {@link Tree}: an image's merged
 * layer tree (from its tar headers), a manifest of a snapshot, a test
 * fixture. Directories the list implies but does not name are made
 * (mode 0755, root-owned, mtime 0, as an unpacker makes them); hard links
 * take their target's metadata and share an inode key with it.
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";
import { DiffErrorCode } from "../errors.js";
import type { Tree, TreeEntry } from "./types.js";

/** One path of a caller-given list: a tree entry, or a hard link to another path of the list. */
export type ListedEntry = { path: string } & (TreeEntry | (Omit<TreeEntry, "type"> & { type: "hardlink"; link: string }));

const bad = (message: string) => new InvalidArgumentError(message, { code: DiffErrorCode.INVALID_TREE_ENTRY });

/** Anything that needs cleaning: a `.` or `..` component, a leading or trailing slash, an empty component. */
const UNCLEAN = /(^|\/)\.\.?(\/|$)|^\/|\/\/|\/$/;

/** `./a/b/`, `/a/b` → `a/b`; refuses `..` and empty components. */
function normalize(path: string): string {
  if (!UNCLEAN.test(path)) return path;
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw bad(`entry ${JSON.stringify(path)}: ".." is not allowed in a tree path`);
  return parts.join("/");
}

const IMPLIED_DIR: TreeEntry = { type: "dir", mode: 0o755, size: 0, uid: 0, gid: 0, mtime: 0 };

/**
 * The tree of `entries` (any order). A later entry for a path already listed
 * is refused (`ERR_INVALID_TREE_ENTRY`), as is a path under a non-directory
 * or with `..`; a hard link to a path the list lacks, or to a non-file, is
 * refused too.
 */
export function entriesTree(entries: Iterable<ListedEntry>): Tree {
  const byPath = new Map<string, TreeEntry>();
  const links: Array<{ path: string; target: string }> = [];
  const dirs = new Map<string, Map<string, TreeEntry>>([["", new Map()]]);
  const childrenOf = (dir: string): Map<string, TreeEntry> => {
    let m = dirs.get(dir);
    if (!m) {
      m = new Map();
      dirs.set(dir, m);
    }
    return m;
  };
  for (const raw of entries) {
    const path = normalize(raw.path);
    if (path === "") continue; // the root itself
    if (byPath.has(path)) throw bad(`entry ${JSON.stringify(raw.path)} is listed twice`);
    const { path: _p, ...rest } = raw;
    if (rest.type === "hardlink") {
      links.push({ path, target: normalize(rest.link) });
      byPath.set(path, { ...IMPLIED_DIR, type: "other" }); // placeholder until resolved
      continue;
    }
    byPath.set(path, rest as TreeEntry);
  }
  // hard links take their target's metadata and share an inode key with it
  for (const l of links) {
    const target = byPath.get(l.target);
    if (target?.type !== "file") {
      throw bad(`hard link ${JSON.stringify(l.path)} → ${JSON.stringify(l.target)}: the target is not a regular file of the list`);
    }
    const inode = target.inode ?? `link:${l.target}`;
    target.inode = inode;
    byPath.set(l.path, { ...target, inode });
  }
  const depth = (p: string) => {
    let n = 0;
    for (let i = p.indexOf("/"); i >= 0; i = p.indexOf("/", i + 1)) n++;
    return n;
  };
  const sorted = [...byPath.keys()].map((p) => [depth(p), p] as const).sort((a, b) => a[0] - b[0]);
  for (const [, path] of sorted) {
    const e = byPath.get(path)!;
    const slash = path.lastIndexOf("/");
    const parent = slash < 0 ? "" : path.slice(0, slash);
    // make the parents no entry names
    let dir = parent;
    const missing: string[] = [];
    while (dir !== "" && !byPath.has(dir)) {
      missing.push(dir);
      const s = dir.lastIndexOf("/");
      dir = s < 0 ? "" : dir.slice(0, s);
    }
    for (const m of missing.reverse()) {
      byPath.set(m, { ...IMPLIED_DIR });
      const s = m.lastIndexOf("/");
      childrenOf(s < 0 ? "" : m.slice(0, s)).set(m.slice(s + 1), byPath.get(m)!);
      childrenOf(m);
    }
    if (parent !== "" && byPath.get(parent)!.type !== "dir") throw bad(`entry ${JSON.stringify(path)} is under ${JSON.stringify(parent)}, which is not a directory`);
    childrenOf(parent).set(path.slice(slash + 1), e);
    if (e.type === "dir") childrenOf(path);
  }
  return {
    async readDir(path: string) {
      const p = normalize(path);
      return dirs.get(p);
    },
  };
}

/** The empty tree (a diff against it lists every path of the other side as added). */
export function emptyTree(): Tree {
  return entriesTree([]);
}
