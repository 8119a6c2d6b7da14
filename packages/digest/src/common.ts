// Everything that does not depend on the backend, re-exported by every entry point.
export * from "./errors.js";
export {
  type Algorithm,
  ALGORITHMS,
  bytesToHex,
  type Digest,
  digestAlgorithm,
  digestFromHex,
  digestHex,
  isDigest,
  isSha256Digest,
  parseDigest,
  shortId,
} from "./digest.js";
export { DigestSet } from "./digestset.js";
export { type Compression, createDecompressor, type Decompressor, detectCompression } from "./decompress.js";
export type { LayerDigestOptions, LayerDigests, LayerDigester, StreamDigest } from "./layer.js";
export { type ByteSource, chunksOf, coalesceChunks } from "./stream.js";
export type { Input, Sha256Backend, Sha256Fn, Sha256Hash } from "./types.js";
export type { DigestApi, Operation } from "./api.js";
