/**
 * `@berth/registry`: an OCI Distribution registry client.
 * @module
 */
export * from "./errors.js";
export { apiHost, type CredentialProvider, DOCKER_HUB_API_HOST, RegistryClient, type RegistryClientOptions, type RepositoryOptions } from "./client.js";
export { type CallOptions, type ManifestHead, type ManifestResult, type OpenBlobOptions, Repository } from "./repository.js";
export { isTagOrDigest, MANIFEST_ACCEPT, nextLink, sniffMediaType } from "./manifest.js";
export { type BlobSource, type UploadOptions, type UploadResult, type UploadStreamOptions, uploadBlob, uploadStream } from "./upload.js";
export { type BlobDescriptor, verifyBytes, verifyStream, type VerifyOptions } from "./verify.js";
export { type BearerOptions, type Credential, mergeScopes, parseErrorBody, withBasic, withBearer } from "./transport/auth.js";
export { type Challenge, parseChallenges } from "./transport/challenge.js";
export { type ConnectOptions, connect, type RegistryConnection } from "./transport/connect.js";
export { HttpPool, type HttpPoolOptions, isTransientNetworkError, networkCode, TRANSIENT_NETWORK_CODES } from "./transport/http.js";
export { isLoopbackHost, ping, type PingOptions, type PingResult } from "./transport/ping.js";
export { resumableBody, type ResumableOptions } from "./transport/resumable.js";
export { isSafeToRetry, RETRY_STATUSES, type RetryOptions, sleep, withRetry } from "./transport/retry.js";
export {
  type BodySource,
  discard,
  type HttpMethod,
  header,
  headerAll,
  isReplayable,
  type RegistryRequest,
  type RegistryResponse,
  readBody,
  type RequestBody,
  type Transport,
} from "./transport/types.js";
export { DEFAULT_USER_AGENT, withUserAgent } from "./transport/useragent.js";
export {
  configKey,
  credentialFromConfig,
  DOCKER_HUB_CONFIG_KEY,
  type DockerAuthEntry,
  type DockerConfig,
  type DockerConfigOptions,
  dockerConfigFile,
  dockerCredentials,
  eraseCredential,
  helperFor,
  hostOfKey,
  readDockerConfig,
  type StoredCredential,
  storeCredential,
  writeDockerConfig,
} from "./credentials/dockerconfig.js";
export { type HelperCredential, type HelperOptions, helperErase, helperGet, helperStore, runCredentialHelper } from "./credentials/helper.js";
export { checkCredential, login, type LoginOptions, logout } from "./credentials/login.js";
export { BLOB_INFO_CACHE_FILE, BlobInfoCache, type BlobInfoCacheLimits, type CompressedBlob } from "./blobinfocache.js";
export { type LayoutWriteOptions, type LayoutWriteResult, OciLayout, PARTIAL_DIR, PARTIAL_MAX_AGE_MS } from "./layout.js";
export { matchingManifests, selectManifest } from "./platform.js";
export {
  type ImageDestination,
  type ImageSource,
  layoutDestination,
  layoutSource,
  type ManifestPlace,
  type PutBlobContext,
  type PutBlobResult,
  type RegistryLocation,
  registryDestination,
  registrySource,
} from "./endpoints.js";
export { type CopyEvent, copyImage, type CopyOptions, type CopyResult } from "./copy.js";
export { type ImageLocation, openDestination, openSource, parseImageLocation } from "./location.js";
export { packOciArchive, unpackOciArchive } from "./archive.js";
