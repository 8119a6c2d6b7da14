/**
 * The registry face's storage over the berth store: the `RegistryBackend`
 * contract the HTTP layer of `berth serve` calls, and
 * {@link StoreRegistryBackend}, its implementation over a store.
 * @module
 */
export * from "./types.js";
export { StoreRegistryBackend, type StoreRegistryBackendOptions } from "./backend.js";
export { registryName, storeRepository, type StoreRepository } from "./names.js";
export type { ManifestEntry, RepoRecord } from "./records.js";
