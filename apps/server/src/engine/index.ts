/**
 * The Docker Engine API face of `berth serve` (images only): mount
 * {@link createEngineApi} on a node:http server and the stock docker CLI and
 * dockerode work against a berth store.
 * @module
 */
export { createEngineApi, type EngineApiOptions, type EngineRequestHandler } from "./api.js";
export { engineService } from "./adapter.js";
export type { EngineIdentity } from "./context.js";
export { EngineErrorCode, type EngineErrorCodeValue } from "./errors.js";
export { parseFilters } from "./filters.js";
export type * from "./service.js";
export { API_VERSION, compareVersions, MIN_API_VERSION } from "./versions.js";
