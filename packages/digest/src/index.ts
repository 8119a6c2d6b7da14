/**
 * `@berth/digest`: SHA-256 digests, DiffIDs and ChainIDs for container images.
 *
 * The root export picks the fastest backend available for each kind of work on
 * the runtime it runs in (see `chooseBackends`); `backendName(op)` says which.
 * It never imports node:crypto statically (it is reached through
 * `process.getBuiltinModule` when present), so it bundles for browsers as is.
 * @module
 */
import { makeDigestApi } from "./api.js";
import { chooseBackends } from "./backends/auto.js";

export * from "./common.js";
export { chooseBackends, MANY_WASM_MAX_AVG } from "./backends/auto.js";
export { initWasm, wasmSimdSupported, wasmUsesSimd } from "./backends/wasm.js";
export type { BackendChoice } from "./api.js";

/** The API bound to the automatically chosen backends. */
export const api = makeDigestApi(chooseBackends());
export const { sha256, sha256Many, chainId, chainIds, chainIdMany, digestStream, layerDigests, createLayerDigester, backendName } = api;
