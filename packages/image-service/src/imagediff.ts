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
  return stackedTree(entries).tree;
}

/** The stacked filesystem as a tree, and which layer last wrote each path. */
function stackedTree(entries: readonly (readonly LayerEntry[])[]): { tree: Tree; writer: Map<string, number> } {
  const stack = new StackedTree();
  entries.forEach((e, i) => {
    stack.apply(e, i);
  });
  return snapshot(stack);
}

function snapshot(stack: StackedTree): { tree: Tree; writer: Map<string, number> } {
  const files = stack.files();
  return { tree: entriesTree(mergedEntries(files)), writer: new Map(files.map((f) => [f.path, f.layer])) };
}

/** The merged filesystem of the store's image `name` resolves to (from its layers' headers). @throws NotFoundError `ERR_IMAGE_NOT_FOUND` */
export async function imageTree(store: Store, name: string): Promise<Tree> {
  return (await stackOf(await localExplorerImage(store, name))).tree;
}

async function stackOf(image: ExplorerImage): Promise<{ tree: Tree; writer: Map<string, number> }> {
  const layers: LayerEntry[][] = [];
  for (let i = 0; i < image.config.rootfs.diff_ids.length; i++) layers.push((await image.tree(i)).entries);
  return stackedTree(layers);
}

const pathChanges = (changes: Change[]): PathChange[] => changes.map((c) => ({ path: c.path, kind: c.kind }));

/**
 * What each layer of the image `name` resolves to adds, changes and removes,
 * against the filesystem of the layers below it, with Docker's change rules
 * (a directory holding a change is listed as changed; what was under a
 * removed directory is not listed). A regular file the layer writes counts
 * as changed even when its header matches the one below (a commit with
 * fixed mtimes rewrites a file with the same size and mtime; headers carry
 * no digests, so a rewrite with the same bytes is listed too).
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
    const after = snapshot(stack);
    // a file this layer wrote is not the file below, whatever its header says
    const changes = await diffTrees(below, after.tree, { compareContent: true, sameContent: (path) => after.writer.get(path) !== i });
    layers.push({ index: i, diffID: diffIDs[i]!, chainID: chain[i]!, createdBy: stepOf.get(i) ?? "", changes: pathChanges(changes) });
    below = after.tree;
  }
  return { id: image.id, layers };
}

/**
 * The changes that turn the filesystem of image `a` into that of image `b`
 * (`A`: only in b, `D`: only in a, `C`: in both, different by Docker's
 * rules). A regular file with the same header in both counts as the same
 * only when the same layer (same ChainID) wrote it in both; otherwise its
 * bytes may differ and it is listed as changed.
 * @throws NotFoundError `ERR_IMAGE_NOT_FOUND`
 */
export async function diffImages(store: Store, a: string, b: string): Promise<ImagesDiff> {
  const [ia, ib] = [await localExplorerImage(store, a), await localExplorerImage(store, b)];
  const [sa, sb] = [await stackOf(ia), await stackOf(ib)];
  const [ca, cb] = [chainIds(ia.config.rootfs.diff_ids), chainIds(ib.config.rootfs.diff_ids)];
  const sameWriter = (path: string) => {
    const la = sa.writer.get(path);
    const lb = sb.writer.get(path);
    return la !== undefined && lb !== undefined && la >= 0 && ca[la] !== undefined && ca[la] === cb[lb];
  };
  const changes = await diffTrees(sa.tree, sb.tree, { compareContent: true, sameContent: sameWriter });
  return { a: ia.id, b: ib.id, changes: pathChanges(changes) };
}
