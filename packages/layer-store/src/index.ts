/**
 * `@berth/layer-store`: a content-addressed blob store and a layer store
 * (layers by ChainID) in one directory that is also an OCI image layout's
 * `blobs/` — crash-safe, shared by several processes at once.
 *
 * @example
 * ```ts
 * import { openLayerStore } from "@berth/layer-store";
 * const store = await openLayerStore({ root: "/tmp/berth" });
 * const layer = await store.register(fs.createReadStream("layer.tar.gz"));
 * await store.acquire(layer.chainID, "image:example");
 * ```
 * @module
 */
export type {
  IngestLayerOptions,
  LayerBlobFacts,
  RecordLayerOptions,
  BlobInfo,
  BlobWriter,
  FileWriter,
  CommitResult,
  ContentIngester,
  ContentProvider,
  ContentReader,
  ContentStore,
  Descriptor,
  GcOptions,
  GcResult,
  ExtraRoots,
  Layer,
  LayerStore,
  Lease,
  RegisterOptions,
  WriterOptions,
  OffThreadWriter,
  OffThreadWriterOptions,
  WrittenBlob,
} from "./types.js";
export { FsContentStore, STORE_LOCK } from "./content.js";
export { FsLayerStore, type OpenLayerStoreOptions, openLayerStore } from "./layers.js";
export { layerMediaType, MEDIA_TYPES } from "@berth/oci";
export { createMemoryLayerStore } from "./memory.js";
export { type LockOptions, withLock } from "./lock.js";
export { fsyncDir, writeFileAtomic, TEMP_SUFFIX } from "./fsutil.js";
export { drained, PUMP_BUFFERS, PUMP_CHUNK, type PumpOptions, pumpReader } from "./pump.js";
export { EARLY_SYNC, PositionalWriter, type PositionalWriterOptions } from "./poswriter.js";
export { openOffThreadWriter } from "./offthread.js";
export { currentOwner, isOwnerAlive, ownerToken, parseOwnerToken, type ProcessOwner } from "./fsutil.js";
export { checkDigest } from "./paths.js";
export { LayerStoreErrorCode, type LayerStoreErrorCodeValue } from "./errors.js";
export { INVALID_LAYER_TAR, parseTarNumber, TarCheck, tarChecksumOk } from "./tarcheck.js";
export { LayerScan, type LayerScanOptions, type ScanFacts } from "./scan.js";
export { ingestLayerBlob } from "./ingest.js";
export { type UncompressOptions, uncompressed, uncompressedChunks } from "./uncompress.js";
export { type ClaimedSource, claimSource } from "./source.js";
export { type FsckOptions, type FsckProblem, type FsckProblemKind, type FsckReport, GARBAGE_KINDS, type GarbageSummary, judgeProblems } from "./types.js";
