import type { BackendChoice } from "../api.js";
import type { Sha256Backend } from "../types.js";
import { nodeBackend, nodeCryptoAvailable } from "./node.js";
import { wasmBackend, wasmSimdSupported } from "./wasm.js";

/**
 * Average message size (bytes) up to which sha256Many uses the WASM SIMD batch
 * path on Node; above it node:crypto (SHA-NI) is faster per message.
 * Measured (Node 20, 2-core EPYC): the WASM batch beats node:crypto one-shot
 * up to ~192–256 B per message (1.4–1.6× at 64–160 B, 0.9× at 256 B, 0.65× at
 * 512 B); see BENCHMARKS.md.
 */
export const MANY_WASM_MAX_AVG = 192;

/** sha256Many on Node: WASM SIMD lanes for small messages, node:crypto for large ones. */
const manyOnNode: Sha256Backend = {
  ...wasmBackend,
  name: "wasm+node",
  hashMany(messages) {
    let bytes = 0;
    for (const m of messages) bytes += m.length;
    const big = messages.length === 0 || bytes / messages.length > MANY_WASM_MAX_AVG;
    return big ? nodeBackend.hashMany(messages) : wasmBackend.hashMany(messages);
  },
};

/**
 * Pick a backend per kind of work for this runtime:
 * - with node:crypto (Node): node:crypto for streams, one-shot hashes and a
 *   single chain (SHA-NI beats any WASM per message); the WASM SIMD batch
 *   paths for many small messages and many chains;
 * - without it (browsers, workers): the WASM core for everything.
 */
export function chooseBackends(): BackendChoice {
  const simd = wasmSimdSupported();
  if (!nodeCryptoAvailable()) {
    return { stream: wasmBackend, oneshot: wasmBackend, many: wasmBackend, chain: wasmBackend, chainOne: wasmBackend };
  }
  return {
    stream: nodeBackend,
    oneshot: nodeBackend,
    many: simd ? manyOnNode : nodeBackend,
    chain: simd ? wasmBackend : nodeBackend,
    chainOne: nodeBackend,
  };
}
