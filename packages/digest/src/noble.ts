/**
 * `@berth/digest/noble`: the public API on @noble/hashes (audited pure
 * JavaScript; no WebAssembly, no native code).
 * @module
 */
import { makeDigestApi } from "./api.js";
import { nobleBackend } from "./backends/noble.js";

export * from "./common.js";
export { nobleBackend };

/** The API bound to @noble/hashes. */
export const api = makeDigestApi(nobleBackend);
export const { sha256, sha256Many, chainId, chainIds, chainIdMany, digestStream, layerDigests, createLayerDigester, backendName } = api;
