/**
 * `docker diff` for images: what each layer of an image adds, changes and
 * removes, and how the filesystems of two images differ — computed from the
 * layers' tar headers (`layertree.ts`, cached per DiffID) with the same
 * double walk and change rules `berth commit` uses (`diffTrees` of
 * `@berth/cache`). Nothing is extracted.
 * @module
 */
import { type Change, type ChangeKind, diffTrees, entriesTree, type FileType, type ListedEntry, type Tree } from "@berth/cache";
import { chainIds, type Digest } from "@berth/digest";
import { type ExplorerImage, localExplorerImage, mapHistory } from "./explore.js";
import type { LayerEntry } from "./layertree.js";
import { type StackedFile, StackedTree } from "./stack.js";
import type { Store } from "@berth/image-store";

/** One changed path, as `docker diff` prints it (`A /path`, `C /path`, `D /path`). */
export interface PathChange {
  /** Path inside the image, without the leading `/`. */
  path: string;
  kind: ChangeKind;
}

/** What one layer of an image changes in the filesystem of the layers below it. */
export interface LayerDiff {
  index: number;
  diffID: Digest;
  chainID: Digest;
  /** The history step that made the layer (empty when the history does not say). */
  createdBy: string;
  changes: PathChange[];
}

/** {@link diffImage}'s answer. */
export interface ImageDiff {
  id: Digest;
  /** Bottom first. */
  layers: LayerDiff[];
}

/** {@link diffImages}' answer: the changes that turn A's filesystem into B's. */
export interface ImagesDiff {
  a: Digest;
  b: Digest;
  changes: PathChange[];
}

const TYPE_BITS = new Map<number, FileType>([
  [0o010000, "fifo"],
  [0o020000, "char"],
  [0o060000, "block"],
  [0o140000, "socket"],
]);

/** `./a` and `/a` → `a`. */
const clean = (p: string) => p.replace(/^(\.?\/)+/, "").replace(/\/+$/, "");

/**
 * The files of stacked layers as an entry list for `entriesTree`: modes
 * without type bits, devices and fifos told apart by the header's type bits,
 * hard links resolved to the regular file they name (a link whose target is
 * gone from the merged filesystem becomes a file of unknown size, 0).
 */
export function mergedEntries(files: readonly StackedFile[]): ListedEntry[] {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const target = (f: StackedFile): string | undefined => {
    let t: StackedFile | undefined = f;
    for (let hops = 0; t?.type === "hardlink" && hops < 64; hops++) t = byPath.get(clean(t.link ?? ""));
    return t?.type === "file" ? t.path : undefined;
  };
  return files.map((f): ListedEntry => {
    const base = { path: f.path, mode: f.mode & 0o7777, size: f.size, uid: f.uid, gid: f.gid, mtime: f.mtime };
    switch (f.type) {
      case "hardlink": {
        const t = target(f);
        return t !== undefined ? { ...base, type: "hardlink", link: t } : { ...base, type: "file", size: 0 };
      }
      case "symlink":
        return { ...base, type: "symlink", link: f.link ?? "" };
      case "file":
      case "dir":
        return { ...base, type: f.type };
      default:
        return { ...base, type: TYPE_BITS.get(f.mode & 0o170000) ?? "other", size: 0 };
    }
  });
}

/** The filesystem layers `entries` (bottom first) make, as a tree for `diffTrees`. */
export function layersTree(entries: readonly (readonly LayerEntry[])[]): Tree {
  const stack = new StackedTree();
  entries.forEach((e, i) => {
    stack.apply(e, i);
  });
  return entriesTree(mergedEntries(stack.files()));
}

/** The merged filesystem of the store's image `name` resolves to (from its layers' headers). @throws NotFoundError `ERR_IMAGE_NOT_FOUND` */
export async function imageTree(store: Store, name: string): Promise<Tree> {
  return treeOf(await localExplorerImage(store, name));
}

async function treeOf(image: ExplorerImage): Promise<Tree> {
  const layers: LayerEntry[][] = [];
  for (let i = 0; i < image.config.rootfs.diff_ids.length; i++) layers.push((await image.tree(i)).entries);
  return layersTree(layers);
}

const pathChanges = (changes: Change[]): PathChange[] => changes.map((c) => ({ path: c.path, kind: c.kind }));

/**
 * What each layer of the image `name` resolves to adds, changes and removes,
 * against the filesystem of the layers below it, with Docker's change rules
 * (a directory holding a change is listed as changed; what was under a
 * removed directory is not listed). A layer that only rewrites files with
 * the same metadata changes nothing.
 * @throws NotFoundError `ERR_IMAGE_NOT_FOUND`; InvalidArgumentError `ERR_NOT_A_TAR` for an unreadable layer
 */
export async function diffImage(store: Store, name: string): Promise<ImageDiff> {
  const image = await localExplorerImage(store, name);
  const diffIDs = image.config.rootfs.diff_ids;
  const history = mapHistory(image.config, diffIDs.length);
  const stepOf = new Map(history.filter((h) => h.layer !== null).map((h) => [h.layer!, h.createdBy]));
  const chain = chainIds(diffIDs);
  const stack = new StackedTree();
  let below = entriesTree([]);
  const layers: LayerDiff[] = [];
  for (let i = 0; i < diffIDs.length; i++) {
    stack.apply((await image.tree(i)).entries, i);
    const after = entriesTree(mergedEntries(stack.files()));
    layers.push({ index: i, diffID: diffIDs[i]!, chainID: chain[i]!, createdBy: stepOf.get(i) ?? "", changes: pathChanges(await diffTrees(below, after)) });
    below = after;
  }
  return { id: image.id, layers };
}

/**
 * The changes that turn the filesystem of image `a` into that of image `b`
 * (`A`: only in b, `D`: only in a, `C`: in both, different by Docker's rules).
 * @throws NotFoundError `ERR_IMAGE_NOT_FOUND`
 */
export async function diffImages(store: Store, a: string, b: string): Promise<ImagesDiff> {
  const [ia, ib] = [await localExplorerImage(store, a), await localExplorerImage(store, b)];
  return { a: ia.id, b: ib.id, changes: pathChanges(await diffTrees(await treeOf(ia), await treeOf(ib))) };
}
