/**
 * `@berth/image-service`: what dockerd's ImageService does, over a berth
 * store — load, save, import and build, tag, moby's delete and prune rules,
 * list, inspect, history, disk usage, fsck, push/pull with a Docker
 * daemon, and pull/push with an OCI registry. The `berth` CLI and
 * `berth serve` are faces over these functions.
 *
 * @example
 * ```ts
 * import { openImageService } from "@berth/image-service";
 * const svc = await openImageService({ root: "/tmp/berth" });
 * const img = await svc.build({ layers: ["./app"], changes: ['CMD ["/app/run"]'], tags: ["app:1"] });
 * await svc.save(["app:1"], "app.tar");
 * await svc.close();
 * ```
 * @module
 */
export { ImageService, openImageService } from "./service.js";
export { ARGUMENT_ERROR_CODES, ImageServiceErrorCode } from "./errors.js";
export {
  compileFilters,
  type Filters,
  type FilterSubject,
  globToRegExp,
  type ImageFilter,
  LIST_FILTERS,
  matchesImage,
  parseFilterFlags,
  parseUntil,
  PRUNE_FILTERS,
  referenceMatches,
} from "./filters.js";
export {
  collectImages,
  type HistoryEntry,
  type ImageDetails,
  type ImageRecord,
  type ImageSummary,
  imageHistory,
  inspectImage,
  layerSizes,
  type ListOptions,
  listImages,
  type ManifestSummary,
  manifestSummary,
  repoTag,
  sharedSizes,
} from "./images.js";
export { blobBytes, type DeleteItem, type PruneOptions, type PruneResult, pruneImages, type RemoveOptions, type RemoveOutcome, removeImages } from "./delete.js";
export { type BuildOptions, type BuiltImage, buildImage, type ImportOptions, importImage, type LayerInput } from "./build.js";
export { applyChanges, type RunConfig } from "./changes.js";
export { type CommitOptions, type CommittedImage, commitDirectory } from "./commit.js";
export { diffImage, diffImages, type ImageDiff, type ImagesDiff, imageTree, type LayerDiff, layersTree, mergedEntries, type PathChange } from "./imagediff.js";
export { directoryLayer, type DirectoryLayerOptions, sourceDateEpoch } from "./dirlayer.js";
export {
  expandSaveNames,
  type LoadImagesOptions,
  type LoadImagesResult,
  loadImages,
  type OpenedSave,
  openSave,
  type SaveImagesOptions,
  type SaveImagesResult,
  saveImages,
} from "./archive.js";
export {
  type DaemonNameOutcome,
  daemonHasImage,
  findLayerByDiffId,
  type PushedLayer,
  type PushToDaemonOptions,
  type PushToDaemonResult,
  pullImagesFromDaemon,
  pushToDaemon,
  removeFromDaemon,
  type SaveToDaemonOptions,
  type SaveToDaemonResult,
  saveToDaemon,
} from "./daemon.js";
export { DockerClient, warmLoadWorkers } from "@berth/docker-archive";
export {
  type PullOptions,
  type PullResult,
  pullImage,
  type RegistryEvent,
  type RegistryOptions,
  storeSource,
  type TransferredBlob,
  importStoredManifest,
  type ImportStoredOptions,
} from "./registry.js";
export * from "./registry-backend/index.js";
export { type DiskUsage, diskUsage, fsck, type UsageRow } from "./system.js";
export {
  cachedLayerTree,
  cacheLayerTree,
  type LayerEntry,
  LayerEntriesReader,
  type LayerEntryType,
  type LayerFiles,
  LAYER_TREE_CACHE_DIR,
  layerTree,
  MAX_LAYER_ENTRIES,
  MAX_PATH_DEPTH,
  readLayerBlob,
  type ReadLayerBlobOptions,
  readLayerEntries,
} from "./layertree.js";
export { explainRemoteImage, type RemoteExploreOptions, remoteLayerView } from "./explore-remote.js";
export { type RemoteImage, resolveRemoteImage, resolveSourceImage, storeImage } from "./registry.js";
export { type PushCompression, type PushOptions, type PushResult, pushImage } from "./push.js";
export { BLOB_INFO_CACHE_DIR, withBlobInfoCache } from "./registry.js";
export { type CacheSourceOptions, type RegistryCacheOptions, registryFetcher, withCacheSource, withRegistryCache } from "./registry-cache.js";
export { type CopyCacheOptions, type CopyCacheResult, copyCache, type ExportCacheOptions, type ExportCacheResult, exportCache } from "./cache-export.js";
export { type CopyBetweenOptions, type CopyBetweenResult, type CopyLocation, type CopyProgress, copyBetween, parseCopyLocation } from "./copy.js";
export { type EntryStatus, type MarkedEntry, sameContent, type StackedFile, StackedTree, stackLayers } from "./stack.js";
export { computeEfficiency, type EfficiencyReport, type PathOccurrence, type WastedPath } from "./efficiency.js";
export {
  type ChangeCounts,
  type ComparedLayer,
  compareImages,
  type ConfigSummary,
  explainExplorerImage,
  explainImage,
  type ExplainedLayer,
  type ExplorerImage,
  explorerLayerView,
  type ExplainedStep,
  type FileDifference,
  type ImageComparison,
  type ImageExplanation,
  type LayerView,
  layerView,
  localExplorerImage,
  type RemoteOrigin,
} from "./explore.js";
export { checkLookup, LOOKUP_LEASE_MS } from "./incremental.js";
export type { Credential as RegistryCredential } from "@berth/registry";
/** `docker login`/`logout`: check a credential against the registry, then keep it in Docker's config.json or its credential helper (what pull and push read). */
export { type LoginOptions, login, logout, type StoredCredential } from "@berth/registry";
export { type UnpackOptions, type UnpackResult, unpackImage } from "./unpack.js";
