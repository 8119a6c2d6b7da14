/**
 * `@berth/digest/node`: the public API on node:crypto (OpenSSL, SHA-NI).
 * @module
 */
import { makeDigestApi } from "./api.js";
import { nodeBackend, nodeCryptoAvailable } from "./backends/node.js";

export * from "./common.js";
export { nodeBackend, nodeCryptoAvailable };

/** The API bound to node:crypto. */
export const api = makeDigestApi(nodeBackend);
export const { sha256, sha256Many, chainId, chainIds, chainIdMany, digestStream, layerDigests, createLayerDigester, backendName } = api;
