/**
 * Layers stacked into the filesystem an image shows, the way a union mount
 * (overlayfs, Docker's layer apply) builds it: each layer's whiteouts and
 * opaque markers remove from the layers below, then its entries are laid on
 * top. Along the way every entry of every layer is marked against the layers
 * below it: added, changed, unchanged (written again, same content and
 * metadata) or removed.
 * @module
 */
import type { LayerEntry } from "./layertree.js";

/** How an entry of a layer relates to the layers below it. */
export type EntryStatus = "added" | "changed" | "unchanged" | "removed";

/** A layer entry marked against the layers below it. */
export interface MarkedEntry extends LayerEntry {
  status: EntryStatus;
  /** For a whiteout or opaque marker: the bytes (sum of file sizes) it hides from the layers below. */
  removedBytes?: number;
  /** For a whiteout: what it removed was a directory below (dive counts those differently, see efficiency.ts). */
  removedDir?: boolean;
}

/** One path of the stacked filesystem: its entry (absent for a parent no layer wrote) and the layer that wrote it. */
interface Node {
  entry?: LayerEntry;
  layer: number;
  children?: Map<string, Node>;
}

/** One path of the stacked filesystem, as {@link StackedTree.files} lists it. */
export interface StackedFile {
  path: string;
  type: LayerEntry["type"];
  size: number;
  /** Index of the layer that last wrote this path (-1 for a directory no layer wrote itself). */
  layer: number;
  mode: number;
  link?: string;
  /** Modification time (seconds) of the entry's header; 0 for a directory no layer wrote. */
  mtime: number;
  /** Owner and group IDs of the entry's header; 0 for a directory no layer wrote. */
  uid: number;
  gid: number;
}

/**
 * Whether `b` only writes `a` again: same type, mode, size, owner, mtime and
 * link target. Contents are not compared (layer trees come from tar headers
 * alone, see `readLayerEntries`); dive hashes them, so a file rewritten with
 * the same bytes but a new mtime is "changed" here and "unmodified" in dive,
 * and a same-size rewrite that kept its mtime is "unchanged" here.
 */
export function sameContent(a: LayerEntry, b: LayerEntry): boolean {
  return a.type === b.type && a.mode === b.mode && a.size === b.size && a.mtime === b.mtime && a.uid === b.uid && a.gid === b.gid && a.link === b.link;
}

/** The filesystem of layers stacked so far. */
export class StackedTree {
  readonly #root: Node = { layer: -1, children: new Map() };

  /** The node at `path`, or undefined. */
  #get(path: string): Node | undefined {
    let n: Node | undefined = this.#root;
    for (const part of path.split("/")) {
      n = n.children?.get(part);
      if (!n) return undefined;
    }
    return n;
  }

  /** The node at `path`, made (with parents no layer wrote) when missing. */
  #make(path: string, layer: number): Node {
    let n = this.#root;
    for (const part of path.split("/")) {
      n.children ??= new Map();
      let next = n.children.get(part);
      if (!next) {
        next = { layer };
        n.children.set(part, next);
      }
      n = next;
    }
    return n;
  }

  #remove(path: string): void {
    const slash = path.lastIndexOf("/");
    const parent = slash < 0 ? this.#root : this.#get(path.slice(0, slash));
    parent?.children?.delete(path.slice(slash + 1));
  }

  /** Bytes of the entries at and below `n`. */
  static #bytes(n: Node): number {
    let sum = n.entry?.size ?? 0;
    for (const c of n.children?.values() ?? []) sum += StackedTree.#bytes(c);
    return sum;
  }

  /**
   * Lay one layer on top: mark each of its entries against the tree as it
   * was below the layer, apply its removals, then its entries.
   */
  apply(entries: readonly LayerEntry[], layer: number): MarkedEntry[] {
    const marked: MarkedEntry[] = entries.map((e) => {
      const below = e.path === "" ? this.#root : this.#get(e.path);
      if (e.type === "whiteout") {
        return { ...e, status: "removed", removedBytes: below ? StackedTree.#bytes(below) : 0, removedDir: below?.entry?.type === "dir" || (!below?.entry && !!below?.children) };
      }
      if (e.type === "opaque") {
        let hidden = 0;
        for (const c of below?.children?.values() ?? []) hidden += StackedTree.#bytes(c);
        return { ...e, status: "removed", removedBytes: hidden };
      }
      if (!below?.entry) return { ...e, status: below && e.type === "dir" ? "unchanged" : "added" };
      return { ...e, status: sameContent(below.entry, e) ? "unchanged" : "changed" };
    });
    for (const e of entries) {
      if (e.type === "whiteout") this.#remove(e.path);
      else if (e.type === "opaque") {
        const n = e.path === "" ? this.#root : this.#get(e.path);
        if (n) n.children = new Map();
      }
    }
    for (const e of entries) {
      if (e.type === "whiteout" || e.type === "opaque") continue;
      const n = this.#make(e.path, layer);
      // a file replacing a directory hides what was below it
      if (e.type !== "dir") n.children = undefined;
      n.entry = e;
      n.layer = layer;
    }
    return marked;
  }

  /** Every path of the stacked filesystem, parents before children, names sorted. */
  files(): StackedFile[] {
    const out: StackedFile[] = [];
    const walk = (n: Node, prefix: string) => {
      for (const name of [...(n.children?.keys() ?? [])].sort()) {
        const c = n.children!.get(name)!;
        const path = prefix ? `${prefix}/${name}` : name;
        const f: StackedFile = { path, type: c.entry?.type ?? "dir", size: c.entry?.size ?? 0, layer: c.entry ? c.layer : -1, mode: c.entry?.mode ?? 0o755, mtime: c.entry?.mtime ?? 0, uid: c.entry?.uid ?? 0, gid: c.entry?.gid ?? 0 };
        if (c.entry?.link !== undefined) f.link = c.entry.link;
        out.push(f);
        walk(c, path);
      }
    };
    walk(this.#root, "");
    return out;
  }
}

/** Stack the layers bottom to top: every layer's entries marked, and the final tree. */
export function stackLayers(layers: readonly (readonly LayerEntry[])[]): { marked: MarkedEntry[][]; tree: StackedTree } {
  const tree = new StackedTree();
  const marked = layers.map((entries, i) => tree.apply(entries, i));
  return { marked, tree };
}
