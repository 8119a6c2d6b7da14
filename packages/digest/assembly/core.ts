// The scalar part of the SHA-256 core of @berth/digest (AssemblyScript ->
// WebAssembly), shared by the SIMD build (simd.ts) and the fallback build for
// runtimes without WebAssembly SIMD (scalar.ts).
//
// Memory layout: a few static areas (memory.data) and, from ioBase(), a
// growable I/O region the JS side copies input into and reads output from.
// No allocator, no runtime: every function works on raw pointers.
//
// Exported entry points (here):
//   ctx*        streaming hash (one context at CTX; the JS side swaps contexts in/out)
//   hashOne     one-shot
//   chainAll    every ChainID of one chain (serial, scalar)
//   validateScalar  check many "sha256:<64 hex>" strings
// and in simd.ts: hashMany / chainMany (4 messages or chains in SIMD lanes), validate.
import { blocks } from "./rounds";

// ------------------------------------------------------------------ static areas

// Streaming context: state (8 x u32) @0, total bytes (u64) @32, buffered bytes (u32) @40, buffer @64..127.
const CTX: usize = memory.data(128, 16);
const CTX_TOTAL: usize = 32;
const CTX_BUFLEN: usize = 40;
const CTX_BUF: usize = 64;

// 4 lane states for the SIMD paths: word i of lane j at ST4 + 16*i + 4*j.
export const ST4: usize = memory.data(128, 16);
// Per-lane tail blocks (the padded end of a message, up to 2 blocks each).
export const TAIL: usize = memory.data(4 * 128, 16);
// A readable dummy block / DiffID string for idle lanes.
export const IDLE: usize = memory.data(128, 16);
// Message of one ChainID step for the scalar path (3 blocks).
const MSG: usize = memory.data(192, 16);

export const IV: usize = memory.data<u32>([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

// "0123456789abcdef" pairs: HEX2[b] = the two ASCII chars of byte b (as a little-endian u16).
const HEX2: usize = memory.data(512, 2);
let hexReady = false;

export function initHex(): void {
  if (hexReady) return;
  for (let b: u32 = 0; b < 256; b++) {
    const hi = b >> 4;
    const lo = b & 15;
    const ch = hi < 10 ? 48 + hi : 87 + hi;
    const cl = lo < 10 ? 48 + lo : 87 + lo;
    store<u16>(HEX2 + (b << 1), <u16>(ch | (cl << 8)));
  }
  // The scalar ChainID message: "sha256:" + hex + " " + DiffID + padding.
  memory.fill(MSG, 0, 192);
  writePrefix(MSG);
  store<u8>(MSG, 0x20, 71);
  store<u8>(MSG, 0x80, 143);
  store<u64>(MSG, bswap<u64>(<u64>143 * 8), 184);
  hexReady = true;
}

/** Write "sha256:" at p. */
@inline
function writePrefix(p: usize): void {
  // "sha256:" = 73 68 61 32 35 36 3a
  store<u32>(p, 0x32616873);
  store<u16>(p, 0x3635, 4);
  store<u8>(p, 0x3a, 6);
}

/** Hex of one big-endian-valued u32 word (8 chars) at p. */
@inline
function hexWord(p: usize, w: u32): void {
  store<u16>(p, load<u16>(HEX2 + ((w >> 24) << 1)));
  store<u16>(p, load<u16>(HEX2 + (((w >> 16) & 255) << 1)), 2);
  store<u16>(p, load<u16>(HEX2 + (((w >> 8) & 255) << 1)), 4);
  store<u16>(p, load<u16>(HEX2 + ((w & 255) << 1)), 6);
}

/** Write the 71-byte record "sha256:<hex>" of the scalar state at st. */
function writeRecord(out: usize, st: usize): void {
  writePrefix(out);
  for (let i: usize = 0; i < 8; i++) hexWord(out + 7 + (i << 3), load<u32>(st + (i << 2)));
}

/** Write the 71-byte record of lane j of the 4-lane state at ST4. */
export function writeLaneRecord(out: usize, j: usize): void {
  writePrefix(out);
  for (let i: usize = 0; i < 8; i++) hexWord(out + 7 + (i << 3), load<u32>(ST4 + (i << 4) + (j << 2)));
}

@inline
function nibble(c: u32): u32 {
  return c <= 57 ? c - 48 : c - 87;
}

/** Parse the 64 hex chars at p (already validated) into a u32 word i of... */
export function parseWord(p: usize): u32 {
  let w: u32 = 0;
  for (let k: usize = 0; k < 8; k++) w = (w << 4) | nibble(<u32>load<u8>(p + k));
  return w;
}

// ------------------------------------------------------------------ I/O region

/** Start of the growable I/O region (64-byte aligned, after static data). */
export function ioBase(): usize {
  return (__heap_base + 63) & ~(<usize>63);
}

// ------------------------------------------------------------------ streaming

/** Address of the streaming context (128 bytes) so JS can save and restore it. */
export function ctxPtr(): usize {
  return CTX;
}

/** Reset the streaming context. */
export function ctxInit(): void {
  memory.copy(CTX, IV, 32);
  store<u64>(CTX + CTX_TOTAL, 0);
  store<u32>(CTX + CTX_BUFLEN, 0);
}

/** Feed len bytes at p (any split of a message gives the same digest). */
export function ctxUpdate(p: usize, len: usize): void {
  store<u64>(CTX + CTX_TOTAL, load<u64>(CTX + CTX_TOTAL) + <u64>len);
  let bl = <usize>load<u32>(CTX + CTX_BUFLEN);
  if (bl != 0) {
    let take: usize = 64 - bl;
    if (take > len) take = len;
    memory.copy(CTX + CTX_BUF + bl, p, take);
    bl += take;
    p += take;
    len -= take;
    if (bl < 64) {
      store<u32>(CTX + CTX_BUFLEN, <u32>bl);
      return;
    }
    blocks(CTX, CTX + CTX_BUF, 1);
    bl = 0;
  }
  const n = len >> 6;
  if (n != 0) {
    blocks(CTX, p, n);
    p += n << 6;
    len &= 63;
  }
  if (len != 0) memory.copy(CTX + CTX_BUF, p, len);
  store<u32>(CTX + CTX_BUFLEN, <u32>len);
}

/** Finish: 32 raw digest bytes at out, then the 71-byte "sha256:<hex>" record at out + 32. */
export function ctxFinal(out: usize): void {
  initHex();
  const bl = <usize>load<u32>(CTX + CTX_BUFLEN);
  const bits = load<u64>(CTX + CTX_TOTAL) << 3;
  const buf = CTX + CTX_BUF;
  store<u8>(buf + bl, 0x80);
  memory.fill(buf + bl + 1, 0, 63 - bl);
  if (bl >= 56) {
    blocks(CTX, buf, 1);
    memory.fill(buf, 0, 56);
  }
  store<u64>(buf, bswap<u64>(bits), 56);
  blocks(CTX, buf, 1);
  for (let i: usize = 0; i < 8; i++) store<u32>(out + (i << 2), bswap<u32>(load<u32>(CTX + (i << 2))));
  writeRecord(out + 32, CTX);
}

/** One-shot: digest of len bytes at p, written like ctxFinal. */
export function hashOne(p: usize, len: usize, out: usize): void {
  ctxInit();
  ctxUpdate(p, len);
  ctxFinal(out);
}

const SST: usize = memory.data(32, 16); // scalar chain state

/**
 * Every ChainID of one chain of n DiffIDs (71-byte strings back to back at
 * strs, validated): record i at out + 71*i is the ChainID of DiffIDs 0..i.
 */
export function chainAll(strs: usize, n: u32, out: usize): void {
  initHex();
  if (n == 0) return;
  memory.copy(out, strs, 71);
  for (let i: usize = 0; i < 8; i++) store<u32>(SST + (i << 2), parseWord(strs + 7 + (i << 3)));
  for (let k: usize = 1; k < <usize>n; k++) {
    for (let i: usize = 0; i < 8; i++) hexWord(MSG + 7 + (i << 3), load<u32>(SST + (i << 2)));
    memory.copy(MSG + 72, strs + k * 71, 71);
    memory.copy(SST, IV, 32);
    blocks(SST, MSG, 3);
    writeRecord(out + k * 71, SST);
  }
}

/**
 * Check n 71-byte strings at strs are "sha256:" + 64 lowercase hex. Returns
 * the index of the first that is not, or -1.
 */
export function validateScalar(strs: usize, n: u32): i32 {
  for (let i: u32 = 0; i < n; i++) {
    const s = strs + <usize>i * 71;
    if (load<u32>(s) != 0x32616873 || load<u16>(s, 4) != 0x3635 || load<u8>(s, 6) != 0x3a) return <i32>i;
    for (let k: usize = 7; k < 71; k++) {
      const c = <u32>load<u8>(s + k);
      if (!(c - 48 < 10 || c - 97 < 6)) return <i32>i;
    }
  }
  return -1;
}
