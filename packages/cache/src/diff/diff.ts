/**
 * The filesystem diff: a double walk of a lower and an upper tree, one
 * directory at a time, giving the added, changed and removed paths the way
 * Docker's non-overlay change detection (moby `pkg/archive/changes.go`,
 * `ChangesDirs`) does, plus opaque directories.
 * @module
 */
import { digestStream, InvalidArgumentError } from "@berth/digest";
import { directoryTree, type DirectoryTreeOptions } from "./dirtree.js";
import { DiffErrorCode } from "../errors.js";
import { type Change, compareNames, joinPath, type Tree, type TreeEntry } from "./types.js";

/** Options of {@link diffTrees}. */
export interface DiffOptions {
  /**
   * When type, mode, owner, size, mtime and link target all agree, compare
   * the contents too (hash the upper file against the lower entry's
   * `digest`, else read both files). Default false: like Docker, a file
   * rewritten with the same size and mtime counts as unchanged.
   */
  compareContent?: boolean;
  /**
   * With `compareContent`: decides whether two regular files whose metadata
   * agrees hold the same bytes, instead of hashing or reading them — for
   * trees that know where their contents come from (e.g. which layer wrote
   * a file: the same layer, the same bytes).
   */
  sameContent?: (path: string, lower: TreeEntry, upper: TreeEntry) => boolean | Promise<boolean>;
  /** Stop the walk (rejects with the signal's reason). */
  signal?: AbortSignal;
  /**
   * Modification times that differ by less than this many seconds count as
   * the same: for an upper tree copied from the lower by a tool that keeps
   * only milliseconds (Node's `utimes`). Default 0: Docker's rule alone.
   */
  mtimeTolerance?: number;
  /**
   * A device node or fifo of `lower` that `upper` lacks is not a removal:
   * for an upper tree extracted without the right to create them (an unpack
   * without root skips and lists them). Default false.
   */
  keepMissingSpecial?: boolean;
}

/**
 * Docker's `sameFsTime`: the same second, and the same sub-second part
 * unless either side has none (a tar header keeps whole seconds).
 */
export function sameTime(a: number, b: number): boolean {
  const sa = Math.floor(a);
  const sb = Math.floor(b);
  return sa === sb && (a === b || a === sa || b === sb);
}

/**
 * Whether the upper entry `b` shows no change from the lower entry `a`, as
 * moby's `statDifferent` decides: type and permission bits, owner, device
 * number, and for everything but directories size and mtime; berth also
 * compares symbolic link targets (Docker relies on their size and mtime).
 */
export function sameEntry(a: TreeEntry, b: TreeEntry, mtimeTolerance = 0): boolean {
  if (a.type !== b.type || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || (a.rdev ?? 0) !== (b.rdev ?? 0)) return false;
  if (a.type === "dir") return true;
  const sameMtime = sameTime(a.mtime, b.mtime) || Math.abs(a.mtime - b.mtime) < mtimeTolerance;
  return a.size === b.size && sameMtime && a.link === b.link;
}

/**
 * The changes that turn `lower` into `upper`, in the order a layer lists
 * them: depth first, the names of each directory in byte order, a directory
 * before what it holds. As Docker does:
 *
 * - a path only in `upper` is `added`, and so is everything under an added
 *   directory; a path only in `lower` is `removed` (what was under a removed
 *   directory is not listed);
 * - a path in both whose entry differs ({@link sameEntry}) is `changed`; a
 *   type change (directory ↔ file) is a change of that path, and what was
 *   under a replaced directory is not listed (a layer's file entry replaces
 *   the directory below it whole);
 * - a directory that holds a change is `changed` itself (its entry goes
 *   into the layer, so owners and modes survive), the root excepted.
 *
 * A directory of both trees whose lower children are all gone (removed, or
 * removed and re-created under other names) is marked `opaque`.
 * @throws InvalidArgumentError `ERR_NOT_A_DIRECTORY` when `upper`'s root is not a directory
 */
export async function diffTrees(lower: Tree, upper: Tree, opts: DiffOptions = {}): Promise<Change[]> {
  const upperRoot = await upper.readDir("");
  if (!upperRoot) throw new InvalidArgumentError("the upper tree has no root directory", { code: DiffErrorCode.NOT_A_DIRECTORY });
  const lowerRoot = await lower.readDir("");
  const out: Change[] = [];
  await new Walk(lower, upper, opts, out).dir("", lowerRoot, upperRoot);
  return out;
}

/**
 * {@link diffTrees} of an upper directory on disk (an edited rootfs, a
 * mutable snapshot) against `lower`; `idMapping` turns the upper files'
 * host owners into container owners before they are compared.
 */
export function diffDirectory(lower: Tree, upperDir: string, opts: DiffOptions & DirectoryTreeOptions = {}): Promise<Change[]> {
  return diffTrees(lower, directoryTree(upperDir, opts), opts);
}

class Walk {
  constructor(
    readonly lower: Tree,
    readonly upper: Tree,
    readonly opts: DiffOptions,
    readonly out: Change[],
  ) {}

  /** Diff the directory `dir`; returns whether it is opaque (every lower child gone). */
  async dir(dir: string, lowerKids: ReadonlyMap<string, TreeEntry> | undefined, upperKids: ReadonlyMap<string, TreeEntry>): Promise<boolean> {
    this.opts.signal?.throwIfAborted();
    const names = new Set(upperKids.keys());
    let remaining = 0;
    for (const n of lowerKids?.keys() ?? []) {
      if (names.has(n)) remaining++;
      else names.add(n);
    }
    for (const name of [...names].sort(compareNames)) {
      const path = joinPath(dir, name);
      const u = upperKids.get(name);
      const l = lowerKids?.get(name);
      if (!u) {
        if (this.opts.keepMissingSpecial && (l!.type === "char" || l!.type === "block" || l!.type === "fifo")) remaining++;
        else this.out.push({ path, kind: "removed", lower: l! });
        continue;
      }
      if (!l) {
        this.out.push({ path, kind: "added", entry: u });
        if (u.type === "dir") await this.added(path);
        continue;
      }
      const differs = !sameEntry(l, u, this.opts.mtimeTolerance) || (this.opts.compareContent === true && !(await this.sameBytes(path, l, u)));
      if (u.type === "dir") {
        const at = this.out.length;
        const sub = (await this.upper.readDir(path)) ?? new Map();
        const lowerSub = l.type === "dir" ? await this.lower.readDir(path) : undefined;
        const opaque = await this.dir(path, lowerSub, sub);
        if (differs || opaque || this.out.length > at) {
          this.out.splice(at, 0, { path, kind: "changed", entry: u, lower: l, ...(opaque ? { opaque: true } : {}) });
        }
      } else if (differs) {
        this.out.push({ path, kind: "changed", entry: u, lower: l });
      }
    }
    return dir !== "" && lowerKids !== undefined && lowerKids.size > 0 && remaining === 0;
  }

  /** Everything under the added directory `dir`. */
  async added(dir: string): Promise<void> {
    this.opts.signal?.throwIfAborted();
    const kids = (await this.upper.readDir(dir)) ?? new Map<string, TreeEntry>();
    for (const name of [...kids.keys()].sort(compareNames)) {
      const path = joinPath(dir, name);
      const e = kids.get(name)!;
      this.out.push({ path, kind: "added", entry: e });
      if (e.type === "dir") await this.added(path);
    }
  }

  /** Same bytes? Only asked for two regular files of the same size (metadata equal). */
  async sameBytes(path: string, l: TreeEntry, u: TreeEntry): Promise<boolean> {
    if (l.type !== "file" || u.type !== "file") return true;
    if (this.opts.sameContent) return this.opts.sameContent(path, l, u);
    if (!this.upper.open) return true;
    if (l.digest !== undefined) return (await digestStream(this.upper.open(path))).digest === l.digest;
    if (!this.lower.open) return true; // nothing to compare with: the metadata decides
    return sameStreams(this.lower.open(path), this.upper.open(path));
  }
}

/** Whether two byte streams yield the same bytes (chunk boundaries may differ). */
export async function sameStreams(a: AsyncIterable<Uint8Array>, b: AsyncIterable<Uint8Array>): Promise<boolean> {
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  let ca: Uint8Array = new Uint8Array(0);
  let cb: Uint8Array = new Uint8Array(0);
  let endA = false;
  let endB = false;
  try {
    for (;;) {
      if (ca.length === 0 && !endA) {
        const r = await ia.next();
        if (r.done) endA = true;
        else ca = r.value;
        continue;
      }
      if (cb.length === 0 && !endB) {
        const r = await ib.next();
        if (r.done) endB = true;
        else cb = r.value;
        continue;
      }
      if (ca.length === 0 || cb.length === 0) return ca.length === 0 && cb.length === 0 && endA && endB;
      const n = Math.min(ca.length, cb.length);
      if (Buffer.compare(ca.subarray(0, n), cb.subarray(0, n)) !== 0) return false;
      ca = ca.subarray(n);
      cb = cb.subarray(n);
    }
  } finally {
    await ia.return?.();
    await ib.return?.();
  }
}
