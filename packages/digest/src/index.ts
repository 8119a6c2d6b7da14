/**
 * `@berth/digest`: SHA-256 digests, DiffIDs and ChainIDs for container images.
 *
 * The root export picks the fastest backend available for each kind of work on
 * the runtime it runs in; `backendName(op)` says which.
 * @module
 */
import { makeDigestApi } from "./api.js";
import { nodeBackend } from "./backends/node.js";

export * from "./common.js";

/** The API bound to the automatically chosen backends. */
export const api = makeDigestApi(nodeBackend);
export const { sha256, sha256Many, chainId, chainIds, chainIdMany, digestStream, layerDigests, createLayerDigester, backendName } = api;
