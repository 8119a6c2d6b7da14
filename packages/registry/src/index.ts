/**
 * `@berth/registry`: an OCI Distribution registry client.
 * @module
 */
export * from "./errors.js";
export { apiHost, type CredentialProvider, DOCKER_HUB_API_HOST, RegistryClient, type RegistryClientOptions, type RepositoryOptions } from "./client.js";
export {
  type CallOptions,
  MANIFEST_ACCEPT,
  type ManifestHead,
  type ManifestResult,
  nextLink,
  type OpenBlobOptions,
  Repository,
  sniffMediaType,
} from "./repository.js";
export { type BlobSource, type UploadOptions, type UploadResult, uploadBlob } from "./upload.js";
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
