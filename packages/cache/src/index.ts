/**
 * `@berth/cache`: the build cache — moby's classic builder cache (parent chain
 * and `--cache-from`), BuildKit-style cache records with du/prune, cache
 * manifest import, and cache that survives `docker save` / `docker load`.
 * @module
 */
export { CacheErrorCode, type CacheErrorCodeValue } from "./errors.js";
export { type BuildPlatform, compareContainerConfig, containerConfigDifference, entrypointMergedFromParent } from "./compare.js";
export { comparePlatform, defaultBuildPlatform, hostArchitecture, normalizeArch, normalizePlatform } from "@berth/oci";
export {
  type BuildCache,
  type CacheCandidate,
  type CacheImage,
  type CacheWarning,
  type ClassicCacheStore,
  type CreateCacheOptions,
  createCache,
  getLayerForHistoryIndex,
  type GetCacheOptions,
  ImageCache,
  isValidConfig,
  isValidParent,
  LocalImageCache,
} from "./classic.js";
export { goContainerConfig, goHistory, goRestoredImageConfig, goString, goTime, type RestoredImageFields } from "./gojson.js";
export {
  blobChainId,
  CacheManager,
  type CacheManagerOptions,
  type CacheManagerStore,
  type CacheRecord,
  type CacheRef,
  type GetRefOptions,
  type DuOptions,
  openCacheManager,
  parseDuration,
  parseFilters,
  type PruneOptions,
  type PruneResult,
  type RecordOptions,
  type RecordType,
  type RetainPolicy,
  type UsageInfo,
} from "./records.js";
export type { CommitRefOptions, MutableRecord, MutableRef, NewRefOptions } from "./mutable.js";
export { type BlobRef, contentStoreFetcher, type Fetcher, layoutDirFetcher, layoutTarFetcher, openLayout, verifyBytes } from "./fetcher.js";
export { type CacheExportPlan, type ExportDescriptor, type ExportRecord, planCacheExport } from "./export.js";
export {
  ANNOTATION_UNCOMPRESSED,
  CACHE_CONFIG_MEDIA_TYPE,
  type CacheChain,
  type CacheImport,
  type CacheInput,
  type CacheLayerBlob,
  type ImportCacheOptions,
  importCache,
  INLINE_CACHE_FIELD,
  type LookupResult,
  parseCacheConfig,
  parseCacheItems,
  parseInlineCache,
} from "./import.js";
export {
  type ArchiveExtraFile,
  type ChainEntry,
  collectParentChain,
  isParentChainEntry,
  PARENT_CHAIN_DIR,
  type ParentChainExport,
  type ParentChainStore,
  readParentChain,
  type RestoreResult,
  restoreParentChain,
} from "./archive.js";
export { type ApplyOptions, type ApplyResult, applyLayer, MAX_SKIPPED_LISTED, type SkippedEntry } from "./snapshot/apply.js";
export { type CloneResult, type CopyResult, cloneTree, copyTree } from "./snapshot/clone.js";
export { pruneChainSnapshots, type SnapshotSummary, summarizeSnapshots } from "./snapshot/prune.js";
export { applyStoredLayer, type ChainSnapshot, type ChainSnapshotStore, type EnsureChainOptions, ensureChainSnapshot, layerChain } from "./snapshot/chain.js";
export { SnapshotErrorCode, type SnapshotErrorCodeValue } from "./errors.js";
export { normalizeLayerPath } from "./snapshot/safepath.js";
export { programVersion } from "./snapshot/programs.js";
export {
  type CleanupResult,
  diskUsage,
  openSnapshotter,
  type SnapshotInfo,
  type SnapshotKind,
  SNAPSHOTS_DIR,
  Snapshotter,
  type SnapshotterOptions,
  type SnapshotUsage,
} from "./snapshot/snapshotter.js";
export { type UncompressOptions, uncompressedChunks } from "@berth/layer-store";
export {
  type Change,
  type ChangeKind,
  compareNames,
  DiffErrorCode,
  type DiffErrorCodeValue,
  diffDirectory,
  type DiffOptions,
  diffTrees,
  decodeRootlessOwner,
  directoryTree,
  type DirectoryTreeOptions,
  emptyTree,
  encodeRootlessOwner,
  entriesTree,
  type FileType,
  type IdMap,
  IdentityMapping,
  type ListedEntry,
  NOOP_ID,
  OPAQUE_MARKER,
  type Owner,
  readRootlessOwners,
  type RecordedOwner,
  ROOTLESS_XATTR,
  sameEntry,
  sameStreams,
  sameTime,
  type Tree,
  type TreeEntry,
  WHITEOUT_PREFIX,
  writeLayer,
  type WriteLayerOptions,
} from "./diff/index.js";
