import type { Digest } from "./digest.js";

/** Bytes, or a string hashed as its UTF-8 encoding. */
export type Input = Uint8Array | string;

/** An incremental SHA-256 (the shape of `@noble/hashes`' `sha256.create()`). */
export interface Sha256Hash {
  /** Feed more data; returns the same hash for chaining. */
  update(data: Input): this;
  /** Finish and return the digest string. The hash cannot be updated afterwards. */
  digest(): Digest;
  /** Finish and write the 32 raw digest bytes into `out` (at least 32 bytes long). */
  digestInto(out: Uint8Array): void;
  /** Release what the hash holds (WASM slots, buffers). Safe to call twice. */
  destroy(): void;
}

/** `sha256(data)` one-shot, with `sha256.create()` for incremental use. */
export interface Sha256Fn {
  (data: Input): Digest;
  /** A fresh incremental hash. */
  create(): Sha256Hash;
}

/**
 * What a hashing backend provides. Every backend (wasm, node, noble) implements
 * the same contract, so the same test suite runs against each.
 */
export interface Sha256Backend {
  /** Short name: `wasm`, `node`, `noble`. */
  readonly name: string;
  /** One-shot digest. */
  hash(data: Input): Digest;
  /** Incremental hash. */
  create(): Sha256Hash;
  /** Digest of every message, in order. */
  hashMany(messages: readonly Input[]): Digest[];
  /**
   * True when chainIds/chainIdMany validate the DiffIDs themselves (throwing
   * the errors of `parseDigest`); otherwise the caller validates first.
   */
  readonly validatesDiffIds?: boolean;
  /** Every ChainID of one chain of DiffIDs (validated unless `validatesDiffIds`). */
  chainIds(diffIds: readonly Digest[]): Digest[];
  /** The top ChainID of each chain (validated unless `validatesDiffIds`; empty chains are not passed). */
  chainIdMany(chains: readonly (readonly Digest[])[]): Digest[];
}
