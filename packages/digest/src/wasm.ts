/**
 * `@berth/digest/wasm`: the public API on berth's AssemblyScript SHA-256
 * core (WebAssembly, embedded; SIMD multi-buffer batch paths). Works in Node,
 * browsers, workers and bundlers; the module is instantiated on first use
 * (or ahead of time with {@link initWasm}).
 * @module
 */
import { makeDigestApi } from "./api.js";
import { wasmBackend } from "./backends/wasm.js";

export * from "./common.js";
export { initWasm, wasmBackend, wasmScalarBackend, wasmSimdSupported, wasmUsesSimd } from "./backends/wasm.js";

/** The API bound to the WASM core. */
export const api = makeDigestApi(wasmBackend);
export const { sha256, sha256Many, chainId, chainIds, chainIdMany, digestStream, layerDigests, createLayerDigester, backendName } = api;
