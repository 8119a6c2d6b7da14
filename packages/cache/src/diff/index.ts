/**
 * The filesystem diff and the deterministic layer writer: trees (a
 * directory on disk, a caller-given entry list), the double walk giving
 * Docker's added / changed / removed paths with opaque directories, the
 * layer tar of those changes, and identity mapping.
 * @module
 */
export { DiffErrorCode, type DiffErrorCodeValue } from "../errors.js";
export { type Change, type ChangeKind, compareNames, type FileType, type Tree, type TreeEntry } from "./types.js";
export { type IdMap, IdentityMapping, type Owner } from "./idmap.js";
export { directoryTree, type DirectoryTreeOptions } from "./dirtree.js";
export { decodeRootlessOwner, encodeRootlessOwner, NOOP_ID, readRootlessOwners, type RecordedOwner, ROOTLESS_XATTR } from "./rootless.js";
export { emptyTree, entriesTree, type ListedEntry } from "./entrytree.js";
export { diffDirectory, type DiffOptions, diffTrees, sameEntry, sameStreams, sameTime } from "./diff.js";
export { OPAQUE_MARKER, WHITEOUT_PREFIX, writeLayer, type WriteLayerOptions } from "./layer.js";
