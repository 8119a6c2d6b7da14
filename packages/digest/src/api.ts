import { checkDiffIds } from "./backends/generic.js";
import type { Digest } from "./digest.js";
import { type LayerDigestOptions, type LayerDigests, LayerDigester, layerDigestsWith, type StreamDigest, digestStreamWith } from "./layer.js";
import type { ByteSource } from "./stream.js";
import type { Input, Sha256Backend, Sha256Fn } from "./types.js";


/** The public hashing API, bound to one backend. Every entry point exports these names. */
export interface DigestApi {
  /** `sha256(data)` → digest; `sha256.create()` → incremental hash. */
  sha256: Sha256Fn;
  /** Digests of many messages in one call (one boundary crossing on WASM). */
  sha256Many(messages: readonly Input[]): Digest[];
  /**
   * ChainID of a layer chain (OCI image-spec identity):
   * `ChainID(L0) = DiffID(L0)`, `ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))`.
   * Returns `undefined` for an empty chain (Go returns the empty digest).
   */
  chainId(diffIds: readonly string[] | null | undefined): Digest | undefined;
  /** The ChainID of every prefix of the chain: `result[i] = chainId(diffIds.slice(0, i + 1))`. */
  chainIds(diffIds: readonly string[] | null | undefined): Digest[];
  /** The top ChainID of each chain, computed in one batch (`undefined` entries for empty chains are not allowed). */
  chainIdMany(chains: readonly (readonly string[])[]): Digest[];
  /** Digest and size of everything a stream yields. */
  digestStream(source: ByteSource): Promise<StreamDigest>;
  /**
   * Read a layer blob once and return its blob digest and its DiffID (digest of
   * the uncompressed tar), detecting gzip/zstd by magic bytes.
   */
  layerDigests(source: ByteSource, options?: LayerDigestOptions): Promise<LayerDigests>;
  /** A push-style layer digester (feed chunks, then `finish()`). */
  createLayerDigester(options?: LayerDigestOptions): LayerDigester;
  /** Name of the backend used (for `op`, when the choice depends on the work). */
  backendName(op?: Operation): string;
}

/**
 * Kinds of work a backend may be chosen for: `stream` (incremental hashes,
 * digestStream, layerDigests), `oneshot` (sha256()), `many` (sha256Many),
 * `chain` (chainIdMany: many chains at once) and `chainOne` (chainId/chainIds
 * of one chain, which is serial).
 */
export type Operation = "stream" | "oneshot" | "many" | "chain" | "chainOne";

/** Per-operation backend choice (the root export picks by workload). */
export type BackendChoice = Record<Operation, Sha256Backend>;

/** Bind the public API to a backend, or to a per-operation choice of backends. */
export function makeDigestApi(choice: Sha256Backend | BackendChoice): DigestApi {
  const pick: BackendChoice =
    "hash" in choice ? { stream: choice, oneshot: choice, many: choice, chain: choice, chainOne: choice } : choice;
  const { stream, oneshot, many, chain, chainOne: single } = pick;
  const check = (b: Sha256Backend, ids: readonly string[]): readonly Digest[] =>
    b.validatesDiffIds ? (ids as readonly Digest[]) : checkDiffIds(ids);
  const sha256 = ((data: Input) => oneshot.hash(data)) as Sha256Fn;
  sha256.create = () => stream.create();
  return {
    sha256,
    sha256Many: (messages) => many.hashMany(messages),
    chainId(diffIds) {
      if (!diffIds || diffIds.length === 0) return undefined;
      if (diffIds.length === 1) return checkDiffIds(diffIds)[0];
      return single.chainIdMany([check(single, diffIds)])[0];
    },
    chainIds(diffIds) {
      if (!diffIds || diffIds.length === 0) return [];
      return single.chainIds(check(single, diffIds));
    },
    chainIdMany(chains) {
      for (const c of chains) {
        if (c.length === 0) throw new RangeError("chainIdMany: empty chain");
        if (!chain.validatesDiffIds) checkDiffIds(c);
      }
      return chain.chainIdMany(chains as readonly (readonly Digest[])[]);
    },
    digestStream: (source) => digestStreamWith(stream, source),
    layerDigests: (source, options) => layerDigestsWith(stream, source, options),
    createLayerDigester: (options) => new LayerDigester(stream, options),
    backendName: (op) => pick[op ?? "stream"].name,
  };
}
