/**
 * `@berth/server`: the berth server process (`berth serve`) — an OCI
 * Distribution registry at `/v2/` with Basic or Docker token auth, a token
 * endpoint, and the mount points for the Docker Engine API and the explorer
 * page, on TCP (optionally TLS) and a unix socket.
 *
 * ```ts
 * const server = await startServer({ port: 5000, registry: { backend }, handleSignals: true });
 * console.log(`listening on ${server.url}`);
 * await server.closed;
 * ```
 * @module
 */
export { startServer, type RunningServer } from "./server.js";
export { serveStore, type ServeStoreOptions, type ServingStore } from "./serve.js";
export { createUiFace, type UiFaceOptions } from "./ui/face.js";
export {
  DEFAULT_HOST,
  DEFAULT_LIMITS,
  DEFAULT_PORT,
  isLoopbackHost,
  type LogOptions,
  type RegistryFaceConfig,
  type ServerLimits,
  type ServerOptions,
  type TlsOptions,
} from "./options.js";
export { type Face, type RequestContext, requestContext } from "./context.js";
export { SERVER_ERROR_CODES } from "./errors.js";
export { type AccessRule, type Action, ANONYMOUS, type AuthOptions, DEFAULT_ACCESS, type Scope, parseScopes } from "./auth/options.js";
export { parseHtpasswd } from "./auth/htpasswd.js";
export type { RequestLogEntry } from "./log.js";
export * from "./registry/backend.js";
export { SPEC_ERROR_CODES, RegistryError, type SpecErrorCode } from "./registry/errors.js";
export { isValidRepositoryName, isValidUploadId, MAX_NAME_LENGTH } from "./registry/names.js";
