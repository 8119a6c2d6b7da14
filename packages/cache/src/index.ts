/**
 * `@berth/cache`: the build cache — moby's classic builder cache (parent chain
 * and `--cache-from`), BuildKit-style cache records with du/prune, cache
 * manifest import, and cache that survives `docker save` / `docker load`.
 * @module
 */
export {
  type BuildPlatform,
  type CompareOptions,
  compareContainerConfig,
  comparePlatform,
  defaultBuildPlatform,
  entrypointMergedFromParent,
  hostArchitecture,
  normalizeArch,
  normalizePlatform,
} from "./compare.js";
export {
  type BuildCache,
  type CacheImage,
  type CacheWarning,
  type ClassicCacheStore,
  type CreateCacheOptions,
  createCache,
  getLayerForHistoryIndex,
  ImageCache,
  isValidConfig,
  isValidParent,
  LocalImageCache,
} from "./classic.js";
export { goContainerConfig, goHistory, goRestoredImageConfig, goString, goTime, type RestoredImageFields } from "./gojson.js";
