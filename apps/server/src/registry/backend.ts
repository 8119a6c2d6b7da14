/**
 * The contract between the registry's HTTP layer and the storage behind it
 * lives in `@berth/image-service` (`registry-backend/types.ts`), beside its
 * implementation over the berth store; the HTTP layer imports it from here.
 * @module
 */
export {
  type AppendRequest,
  type BlobInfo,
  type BlobReader,
  type BlobScope,
  compareTags,
  type ManifestRef,
  type MountRequest,
  type Page,
  type PageRequest,
  type PutManifestRequest,
  type PutManifestResult,
  REGISTRY_ERROR_CODES,
  type ReferrersRequest,
  type ReferrersResult,
  type RegistryBackend,
  type RegistryErrorCode,
  type StoredManifest,
  type UploadStatus,
} from "@berth/image-service";
