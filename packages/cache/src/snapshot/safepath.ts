/**
 * The one way extraction reaches a path inside the snapshot: names are
 * normalized and refused when absolute or when they have a `..` component,
 * and every parent component is checked with `lstat` — a symbolic link
 * there is refused (`ERR_UNSAFE_LINK`), never followed, so no entry of a
 * layer can be written outside the directory. The calls are synchronous
 * (see `apply.ts` for why). Directories already checked
 * (or created) during one extraction are remembered; anything that removes
 * a directory calls {@link SafeRoot.forget}.
 *
 * Unlike containerd (which resolves a symlinked parent inside the root), a
 * symlinked parent is an error here: a layer writing through one is either
 * hostile or was made by a tool that did not look at the tree it extended.
 * @module
 */
import { lstatSync, mkdirSync, type Stats } from "node:fs";
import { InvalidArgumentError } from "@berth/digest";
import { SnapshotErrorCode } from "../errors.js";

/**
 * A tar entry name (or hard link target) as a path relative to the root:
 * `./a//b/` → `a/b`, `.` and `./` → `""` (the root itself).
 * @throws InvalidArgumentError `ERR_UNSAFE_PATH` for an absolute name, a `..` component or a NUL byte
 */
export function normalizeLayerPath(raw: string, what = "layer entry"): string {
  if (raw.includes("\0")) throw unsafe(raw, what, "has a NUL byte");
  if (raw.startsWith("/")) throw unsafe(raw, what, "is absolute");
  const parts: string[] = [];
  for (const part of raw.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw unsafe(raw, what, "has a '..' component");
    parts.push(part);
  }
  return parts.join("/");
}

function unsafe(raw: string, what: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`${what} ${JSON.stringify(raw)} ${why}`, { code: SnapshotErrorCode.UNSAFE_PATH, details: { path: raw } });
}

/** The directory part of a normalized path (`a/b/c` → `a/b`, `a` → `""`). */
export function parentOf(rel: string): string {
  const i = rel.lastIndexOf("/");
  return i < 0 ? "" : rel.slice(0, i);
}

/** The last component of a normalized path. */
export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf("/") + 1);
}

/** Checked access to paths under one root directory (see the module doc). */
export class SafeRoot {
  /** Absolute path of the root, without a trailing slash. */
  readonly root: string;
  /** Relative paths known to be real directories (not links) right now. */
  #dirs = new Set<string>([""]);

  constructor(root: string) {
    this.root = root.length > 1 && root.endsWith("/") ? root.slice(0, -1) : root;
  }

  /** Absolute path of a normalized relative path (no checks). */
  abs(rel: string): string {
    return rel === "" ? this.root : `${this.root}/${rel}`;
  }

  /** Something under the root was removed or replaced: re-check every directory from now on. */
  forget(): void {
    this.#dirs = new Set([""]);
  }

  /** `rel` is now known to be a real directory (just created or checked by the caller). */
  know(rel: string): void {
    this.#dirs.add(rel);
  }

  /**
   * Make sure the directory `rel` and each of its parents is a real
   * directory; missing ones are created (mode 0755, as Docker does) when
   * `create`, else the result is undefined. Returns the absolute path and
   * the relative paths of the directories it created.
   * @throws InvalidArgumentError `ERR_UNSAFE_LINK` when a component is a symbolic link, `ERR_NOT_A_DIRECTORY` when it is anything else
   */
  async dir(rel: string, create: boolean, created?: (rel: string) => void): Promise<string | undefined> {
    if (this.#dirs.has(rel)) return this.abs(rel);
    const parent = parentOf(rel);
    if (rel !== "" && (await this.dir(parent, create, created)) === undefined) return undefined;
    const abs = this.abs(rel);
    let st: Stats | undefined;
    try {
      st = lstatSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (!st) {
      if (!create) return undefined;
      mkdirSync(abs, 0o755);
      created?.(rel);
    } else if (st.isSymbolicLink()) {
      throw new InvalidArgumentError(`${JSON.stringify(rel)} is a symbolic link: a layer may not write through it`, {
        code: SnapshotErrorCode.UNSAFE_LINK,
        details: { path: rel },
      });
    } else if (!st.isDirectory()) {
      throw new InvalidArgumentError(`${JSON.stringify(rel)} is not a directory: nothing can be written under it`, {
        code: SnapshotErrorCode.NOT_A_DIRECTORY,
        details: { path: rel },
      });
    }
    this.#dirs.add(rel);
    return abs;
  }
}
