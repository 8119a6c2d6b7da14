// The fallback build of the SHA-256 core for runtimes without WebAssembly
// SIMD: the scalar streaming/one-shot/ChainID functions only (the JS side
// loops over them for the batch APIs).
export * from "./core";
