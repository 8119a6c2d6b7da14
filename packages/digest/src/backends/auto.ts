import type { BackendChoice } from "../api.js";
import type { Input, Sha256Backend } from "../types.js";
import { nodeBackend, nodeCryptoAvailable } from "./node.js";
import { wasmBackend, wasmSimdSupported } from "./wasm.js";

/**
 * Average message size (bytes) up to which sha256Many uses the WASM SIMD batch
 * path on Node; above it node:crypto (SHA-NI) is faster per message.
 * Measured (Node 20, 2-core EPYC): the WASM batch beats node:crypto one-shot
 * up to ~192–256 B per message (1.4–1.6× at 64–160 B, 0.9× at 256 B, 0.65× at
 * 512 B); see BENCHMARKS.md. This holds for messages that lie one after another
 * in one buffer; see {@link manyUsesWasm} for the other conditions.
 */
export const MANY_WASM_MAX_AVG = 192;

/**
 * Below this many messages the WASM backend hashes them one by one on the
 * scalar core (no SIMD batch), which node:crypto beats by 2–3× per message.
 */
const MANY_WASM_MIN_COUNT = 4;

/**
 * Whether the root export's sha256Many (on Node, with WASM SIMD) sends
 * `messages` to the WASM batch path rather than a node:crypto loop: at least
 * 4 messages, averaging at most {@link MANY_WASM_MAX_AVG} bytes, that form at
 * most half as many runs as there are messages (a run: byte messages each
 * starting where the one before it ends, `byteOffset` = previous
 * `byteOffset + length`; the WASM path copies each run into its memory with
 * one `set()`). Subarrays of one buffer are one run; separate buffers (each
 * its own `Uint8Array`, as callers usually hold messages) are a run each, and
 * the copy per message takes away the batch's lead, so they go to
 * node:crypto, which reads them in place. Strings are not counted (they are
 * encoded into WASM memory directly and measure even with node:crypto). The
 * scan reads only `length` and `byteOffset` (never `.buffer`, which would
 * move an on-heap array's bytes).
 */
export function manyUsesWasm(messages: readonly Input[]): boolean {
  const n = messages.length;
  if (n < MANY_WASM_MIN_COUNT) return false;
  let bytes = 0;
  let runs = 0;
  let end = -1;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    bytes += m.length;
    if (typeof m !== "string") {
      const off = m.byteOffset;
      if (off !== end) runs++;
      end = off + m.length;
    }
  }
  return bytes <= MANY_WASM_MAX_AVG * n && runs * 2 <= n;
}

/** sha256Many on Node: WASM SIMD lanes for many small contiguous messages, node:crypto otherwise. */
const manyOnNode: Sha256Backend = {
  ...wasmBackend,
  name: "wasm+node",
  hashMany(messages) {
    return manyUsesWasm(messages) ? wasmBackend.hashMany(messages) : nodeBackend.hashMany(messages);
  },
};

/**
 * Pick a backend per kind of work for this runtime:
 * - with node:crypto (Node): node:crypto for streams, one-shot hashes and a
 *   single chain (SHA-NI beats any WASM per message); the WASM SIMD batch
 *   paths for many chains, and for many small messages that lie one after
 *   another in one buffer (see {@link manyUsesWasm}; separate buffers, few
 *   messages or large ones go to node:crypto);
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
