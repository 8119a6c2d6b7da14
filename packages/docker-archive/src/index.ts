/**
 * `@berth/docker-archive`: `docker save` / `docker load` archives (legacy,
 * Docker 25+ hybrid, OCI) against a berth store, and a streaming Docker Engine
 * API client for loading into and pulling from a daemon.
 * @module
 */
export { type LoadOptions, type LoadProgress, type LoadResult, type LoadedExtraFile, type LoadedImage, type LoadedLayer, type TagConflict, load } from "./load.js";
export { warmLoadWorkers } from "./pool.js";
export {
  type SaveFormat,
  type SaveOptions,
  type SavePlan,
  type SaveResult,
  type SavedImage,
  archiveSize,
  planChunks,
  writePlan,
  type WritePlanOptions,
  planEntryRanges,
  type PlanEntryRange,
  planSave,
  save,
  saveStream,
} from "./save.js";
export {
  DaemonError,
  DockerClient,
  DockerTlsError,
  type DockerClientOptions,
  type LoadIntoDaemonOptions,
  type LoadIntoDaemonResult,
  type PullFromDaemonOptions,
  loadIntoDaemon,
  pullFromDaemon,
} from "./daemon.js";
export {
  DEFAULT_DOCKER_HOST,
  DEFAULT_DOCKER_TLS_HOST,
  type DockerEndpoint,
  type DockerTlsOptions,
  type ResolveDockerEndpointOptions,
  dockerConfigDir,
  parseDockerHost,
  resolveDockerEndpoint,
} from "./endpoint.js";
export {
  BERTH_API_HEADER,
  BERTH_API_VERSION,
  LAYER_LOOKUP_PATH,
  type LayerLookupAnswer,
  type LayerLookupRequest,
  LOAD_LEASE_PARAM,
  MAX_LOOKUP_CHAINS,
} from "./berth-api.js";
export { LoadTransaction, type TagStep, type TransactionRecord } from "./commit.js";
export { ArchiveErrorCode } from "./errors.js";
export { type ArchiveSource, decompressArchive, sourceChunks } from "./source.js";
export type { ArchiveStore, ArchiveLease, ArchiveLayer, ArchiveImage, ArchiveDescriptor } from "./store.js";
export {
  type TarEntry,
  type TarEntryType,
  type TarHeader,
  type TarReadOptions,
  normalizeEntryName,
  readTar,
  resolveLinkTarget,
  tarEntrySize,
  tarHeader,
  tarPadding,
  TAR_TRAILER_SIZE,
} from "./tar.js";
export { type TarHeaderEntry, TarHeaderWalker, type TarWalkOptions, walkTarHeaders } from "./tarwalk.js";
