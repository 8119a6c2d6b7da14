#!/usr/bin/env node
// Generates packages/digest/assembly/rounds.ts: the fully unrolled SHA-256
// compression functions (scalar, and 4-lane SIMD multi-buffer) that the
// hand-written AssemblyScript in assembly/index.ts calls.
//
// Why a generator: AssemblyScript has no macros, and a fast SHA-256 needs the
// 64 rounds unrolled with the a..h renaming done at compile time and the
// message schedule held in locals. Writing ~4,000 lines of that by hand invites
// typos; this script writes them from the FIPS 180-4 formulas, folding
// constants where the message words are known (padding blocks of ChainID
// messages are mostly zeros) so no work is spent on them.
//
// Run: node scripts/gen-assembly.mjs  (the package build runs it before asc).
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

const K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
];
const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

const u32 = (x) => x >>> 0;
const rotr32 = (x, n) => u32((x >>> n) | (x << (32 - n)));
const hex = (x) => `0x${u32(x).toString(16).padStart(8, "0")}`;

/**
 * A tiny expression builder with constant folding. A value is either
 * `{ c: number }` (known at generation time) or `{ v: "name" }` (a local).
 * `simd` selects i32 or i32x4 (v128, the same operation in 4 lanes).
 */
class Emitter {
  constructor(simd, prefix) {
    this.simd = simd;
    this.prefix = prefix;
    this.n = 0;
    this.lines = [];
  }
  c(x) {
    return { c: u32(x) };
  }
  lit(x) {
    return this.simd ? `i32x4.splat(${hex(x.c)})` : `${hex(x.c)}`;
  }
  s(x) {
    return x.c !== undefined ? this.lit(x) : x.v;
  }
  bind(expr) {
    const name = `${this.prefix}${this.n++}`;
    this.lines.push(`  const ${name} = ${expr};`);
    return { v: name };
  }
  /** Put a value in a named local even if it is a constant (for stores). */
  materialize(x) {
    return x.c !== undefined ? this.lit(x) : x.v;
  }
  add(...xs) {
    let k = 0;
    const vs = [];
    for (const x of xs) {
      if (x.c !== undefined) k = u32(k + x.c);
      else vs.push(x);
    }
    if (vs.length === 0) return this.c(k);
    let acc = vs[0];
    const rest = vs.slice(1);
    if (k !== 0) rest.push(this.c(k));
    for (const x of rest) acc = this.bind(this.simd ? `i32x4.add(${this.s(acc)}, ${this.s(x)})` : `${this.s(acc)} + ${this.s(x)}`);
    return acc;
  }
  bin(op, a, b, fold) {
    if (a.c !== undefined && b.c !== undefined) return this.c(fold(a.c, b.c));
    if (op === "xor" || op === "or") {
      if (a.c === 0) return b;
      if (b.c === 0) return a;
    }
    if (op === "and" && (a.c === 0 || b.c === 0)) return this.c(0);
    const sop = { xor: "^", or: "|", and: "&" }[op];
    return this.bind(this.simd ? `v128.${op}(${this.s(a)}, ${this.s(b)})` : `${this.s(a)} ${sop} ${this.s(b)}`);
  }
  xor(a, b) {
    return this.bin("xor", a, b, (x, y) => x ^ y);
  }
  or(a, b) {
    return this.bin("or", a, b, (x, y) => x | y);
  }
  and(a, b) {
    return this.bin("and", a, b, (x, y) => x & y);
  }
  shr(a, n) {
    if (a.c !== undefined) return this.c(a.c >>> n);
    return this.bind(this.simd ? `i32x4.shr_u(${a.v}, ${n})` : `${a.v} >>> ${n}`);
  }
  shl(a, n) {
    if (a.c !== undefined) return this.c(a.c << n);
    return this.bind(this.simd ? `i32x4.shl(${a.v}, ${n})` : `${a.v} << ${n}`);
  }
  rotr(a, n) {
    if (a.c !== undefined) return this.c(rotr32(a.c, n));
    if (!this.simd) return this.bind(`rotr<u32>(${a.v}, ${n})`);
    return this.or(this.shr(a, n), this.shl(a, 32 - n));
  }
  /** x ^ y ^ z of three rotations/shifts; in SIMD written as six shifts and xors. */
  sigma(a, r1, r2, r3, shift3) {
    if (a.c !== undefined) {
      const t = rotr32(a.c, r1) ^ rotr32(a.c, r2) ^ (shift3 ? a.c >>> r3 : rotr32(a.c, r3));
      return this.c(t);
    }
    if (!this.simd) {
      const third = shift3 ? `(${a.v} >>> ${r3})` : `rotr<u32>(${a.v}, ${r3})`;
      return this.bind(`rotr<u32>(${a.v}, ${r1}) ^ rotr<u32>(${a.v}, ${r2}) ^ ${third}`);
    }
    let t = this.xor(this.shr(a, r1), this.shl(a, 32 - r1));
    t = this.xor(t, this.shr(a, r2));
    t = this.xor(t, this.shl(a, 32 - r2));
    t = this.xor(t, this.shr(a, r3));
    if (!shift3) t = this.xor(t, this.shl(a, 32 - r3));
    return t;
  }
}

/**
 * Emit 64 rounds of SHA-256 on `state` (8 values) with message words `w`
 * (16 values, constants allowed), returning the 8 output values (state added).
 */
function compress(e, state, w, wk) {
  const W = w.slice();
  let [a, b, c, d, ee, f, g, h] = state;
  let bc = e.xor(b, c);
  for (let t = 0; t < 64; t++) {
    if (t >= 16 && !wk) {
      const s0 = e.sigma(W[t - 15], 7, 18, 3, true);
      const s1 = e.sigma(W[t - 2], 17, 19, 10, true);
      W[t] = e.add(s1, W[t - 7], s0, W[t - 16]);
    }
    const S1 = e.sigma(ee, 6, 11, 25, false);
    const ch = e.xor(g, e.and(ee, e.xor(f, g)));
    const t1 = e.add(h, wk ? (typeof wk === "function" ? wk(t) : wk[t]) : e.add(W[t], e.c(K[t])), ch, S1);
    const S0 = e.sigma(a, 2, 13, 22, false);
    const ab = e.xor(a, b);
    const maj = e.xor(b, e.and(ab, bc));
    const t2 = e.add(S0, maj);
    h = g;
    g = f;
    f = ee;
    ee = e.add(d, t1);
    d = c;
    c = b;
    b = a;
    a = e.add(t1, t2);
    bc = ab;
  }
  const out = [a, b, c, d, ee, f, g, h];
  return out.map((x, i) => e.add(x, state[i]));
}

const parts = [];
parts.push(`// GENERATED by scripts/gen-assembly.mjs: do not edit by hand, edit the generator.
// Fully unrolled SHA-256 compression (FIPS 180-4), scalar and 4-lane SIMD.
/* eslint-disable */
`);

// ---------------------------------------------------------------- scalar
{
  const e = new Emitter(false, "t");
  const st = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"].map((v) => ({ v }));
  const w = [];
  for (let i = 0; i < 16; i++) w.push(e.bind(`bswap<u32>(load<u32>(p, ${i * 4}))`));
  const out = compress(e, st, w);
  const body = e.lines.join("\n");
  parts.push(`/** Compress \`n\` 64-byte blocks at \`p\` into the state at \`st\` (8 big-endian-valued u32). */
export function blocksScalar(st: usize, p: usize, n: usize): void {
  let s0 = load<u32>(st, 0);
  let s1 = load<u32>(st, 4);
  let s2 = load<u32>(st, 8);
  let s3 = load<u32>(st, 12);
  let s4 = load<u32>(st, 16);
  let s5 = load<u32>(st, 20);
  let s6 = load<u32>(st, 24);
  let s7 = load<u32>(st, 28);
  const end = p + (n << 6);
  while (p < end) {
${body
  .split("\n")
  .map((l) => `  ${l}`)
  .join("\n")}
    s0 = ${out[0].v}; s1 = ${out[1].v}; s2 = ${out[2].v}; s3 = ${out[3].v};
    s4 = ${out[4].v}; s5 = ${out[5].v}; s6 = ${out[6].v}; s7 = ${out[7].v};
    p += 64;
  }
  store<u32>(st, s0, 0);
  store<u32>(st, s1, 4);
  store<u32>(st, s2, 8);
  store<u32>(st, s3, 12);
  store<u32>(st, s4, 16);
  store<u32>(st, s5, 20);
  store<u32>(st, s6, 24);
  store<u32>(st, s7, 28);
}
`);
}

// ---------------------------------------------------------------- scalar rounds, SIMD message schedule
// The SIMD build computes the message schedule (and W+K) 4 words at a time in
// v128 registers, stores it to WK and the scalar rounds read it: the schedule
// runs on the vector units beside the scalar rounds, and the rounds need fewer
// registers (x64 has 15 usable GPRs; 8 state + 16 schedule words do not fit).
{
  const e = new Emitter(false, "t");
  const st = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"].map((v) => ({ v }));
  const wk = [];
  for (let t = 0; t < 64; t++) wk.push(e.bind(`load<u32>(WK, ${t * 4})`));
  const out = compress(e, st, [], wk);
  const v = [];
  const BSWAP = "i8x16(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12)";
  const sig = (x, r1, r2, r3) =>
    `v128.xor(v128.xor(v128.xor(i32x4.shr_u(${x}, ${r1}), i32x4.shl(${x}, ${32 - r1})), v128.xor(i32x4.shr_u(${x}, ${r2}), i32x4.shl(${x}, ${32 - r2}))), i32x4.shr_u(${x}, ${r3}))`;
  const kv = (g) => `i32x4(${K.slice(4 * g, 4 * g + 4).map(hex).join(", ")})`;
  for (let g = 0; g < 4; g++) {
    v.push(`    const x${g} = i8x16.swizzle(v128.load(p, ${g * 16}), bswap);`);
    v.push(`    v128.store(WK, i32x4.add(x${g}, ${kv(g)}), ${g * 16});`);
  }
  for (let g = 4; g < 16; g++) {
    const a = `x${g - 4}`, b = `x${g - 3}`, c = `x${g - 2}`, d = `x${g - 1}`;
    v.push(`    const w15_${g} = i8x16.shuffle(${a}, ${b}, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19);`);
    v.push(`    const w7_${g} = i8x16.shuffle(${c}, ${d}, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19);`);
    v.push(`    const tmp${g} = i32x4.add(i32x4.add(${a}, ${sig(`w15_${g}`, 7, 18, 3)}), w7_${g});`);
    v.push(`    const d23_${g} = i8x16.shuffle(${d}, ${d}, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);`);
    v.push(`    const lo${g} = i32x4.add(tmp${g}, ${sig(`d23_${g}`, 17, 19, 10)});`);
    v.push(`    const l01_${g} = i8x16.shuffle(lo${g}, lo${g}, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);`);
    v.push(`    const hi${g} = i32x4.add(tmp${g}, ${sig(`l01_${g}`, 17, 19, 10)});`);
    v.push(`    const x${g} = i8x16.shuffle(lo${g}, hi${g}, 0, 1, 2, 3, 4, 5, 6, 7, 24, 25, 26, 27, 28, 29, 30, 31);`);
    v.push(`    v128.store(WK, i32x4.add(x${g}, ${kv(g)}), ${g * 16});`);
  }
  const body = e.lines.join("\n");
  parts.push(`// W+K of the current block (SIMD build only).
const WK: usize = memory.data(256, 16);

/** Like blocksScalar, with the message schedule computed in SIMD registers (needs --enable simd). */
export function blocksSched(st: usize, p: usize, n: usize): void {
  let s0 = load<u32>(st, 0);
  let s1 = load<u32>(st, 4);
  let s2 = load<u32>(st, 8);
  let s3 = load<u32>(st, 12);
  let s4 = load<u32>(st, 16);
  let s5 = load<u32>(st, 20);
  let s6 = load<u32>(st, 24);
  let s7 = load<u32>(st, 28);
  const bswap = ${BSWAP};
  const end = p + (n << 6);
  while (p < end) {
${v.join("\n")}
${body
  .split("\n")
  .map((l) => `  ${l}`)
  .join("\n")}
    s0 = ${out[0].v}; s1 = ${out[1].v}; s2 = ${out[2].v}; s3 = ${out[3].v};
    s4 = ${out[4].v}; s5 = ${out[5].v}; s6 = ${out[6].v}; s7 = ${out[7].v};
    p += 64;
  }
  store<u32>(st, s0, 0);
  store<u32>(st, s1, 4);
  store<u32>(st, s2, 8);
  store<u32>(st, s3, 12);
  store<u32>(st, s4, 16);
  store<u32>(st, s5, 20);
  store<u32>(st, s6, 24);
  store<u32>(st, s7, 28);
}

/** Compress n blocks: the SIMD-schedule version in the SIMD build, plain scalar otherwise. */
export function blocks(st: usize, p: usize, n: usize): void {
  if (ASC_FEATURE_SIMD) blocksSched(st, p, n);
  else blocksScalar(st, p, n);
}
`);
}

// ---------------------------------------------------------------- SIMD helpers
// Transposing 4 lanes' 16-byte rows into 4 word vectors, byte-swapping each
// 32-bit word to big-endian on the way (two shuffle stages).
const T0 = "0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23";
const T1 = "8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31";
const R0 = "3, 2, 1, 0, 7, 6, 5, 4, 19, 18, 17, 16, 23, 22, 21, 20";
const R1 = "11, 10, 9, 8, 15, 14, 13, 12, 27, 26, 25, 24, 31, 30, 29, 28";

/** Emit loads of 16 bytes at `ptrs[j] + off` for 4 lanes and return 4 word vectors. */
function transposeLoad(e, ptrs, off) {
  const rows = ptrs.map((p) => e.bind(`v128.load(${p}, ${off})`));
  const t0 = e.bind(`i8x16.shuffle(${rows[0].v}, ${rows[1].v}, ${T0})`);
  const t1 = e.bind(`i8x16.shuffle(${rows[0].v}, ${rows[1].v}, ${T1})`);
  const t2 = e.bind(`i8x16.shuffle(${rows[2].v}, ${rows[3].v}, ${T0})`);
  const t3 = e.bind(`i8x16.shuffle(${rows[2].v}, ${rows[3].v}, ${T1})`);
  return [
    e.bind(`i8x16.shuffle(${t0.v}, ${t2.v}, ${R0})`),
    e.bind(`i8x16.shuffle(${t0.v}, ${t2.v}, ${R1})`),
    e.bind(`i8x16.shuffle(${t1.v}, ${t3.v}, ${R0})`),
    e.bind(`i8x16.shuffle(${t1.v}, ${t3.v}, ${R1})`),
  ];
}

function loadState(e, st) {
  return Array.from({ length: 8 }, (_, i) => e.bind(`v128.load(${st}, ${i * 16})`));
}
function storeState(e, st, out) {
  for (const [i, x] of out.entries()) e.lines.push(`  v128.store(${st}, ${e.materialize(x)}, ${i * 16});`);
}

// ---------------------------------------------------------------- SIMD: 4 blocks
{
  const e = new Emitter(true, "x");
  const ptrs = ["p0", "p1", "p2", "p3"];
  const st = loadState(e, "st");
  const w = [];
  for (let k = 0; k < 4; k++) w.push(...transposeLoad(e, ptrs, k * 16));
  const out = compress(e, st, w);
  storeState(e, "st", out);
  parts.push(`/**
 * Compress one 64-byte block of each of 4 independent messages (multi-buffer:
 * lane j of every vector belongs to message j). \`st\` holds the 4 states as 8
 * i32x4 vectors (word i of lane j at st + 16*i + 4*j).
 */
export function compress4(st: usize, p0: usize, p1: usize, p2: usize, p3: usize): void {
${e.lines.join("\n")}
}
`);
}

// ---------------------------------------------------------------- SIMD: ChainID step
// The message of one ChainID step is "sha256:<prev hex> sha256:<diffid hex>"
// (143 bytes, 3 blocks after padding). The previous ChainID is the state in
// the lanes; its hex is built in registers. The DiffID string is read from
// memory at d_j: 71 bytes "sha256:<hex>" (the byte after it is ignored).
{
  const e = new Emitter(true, "q");
  const ptrs = ["d0", "d1", "d2", "d3"];
  const prev = loadState(e, "st");
  // hex of the state: per state word, H = ascii of the high nibbles of each
  // byte, L = of the low nibbles; chars of lane j, word k, in order:
  // H3 L3 H2 L2 H1 L1 H0 L0 (byte 3 is the most significant).
  const HEXTAB = "i8x16(0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66)";
  e.lines.push(`  const hexTab = ${HEXTAB};`);
  e.lines.push(`  const lowNibbles = i8x16.splat(0x0f);`);
  const H = [];
  const L = [];
  for (let k = 0; k < 8; k++) {
    const hi = e.bind(`v128.and(i32x4.shr_u(${prev[k].v}, 4), lowNibbles)`);
    const lo = e.bind(`v128.and(${prev[k].v}, lowNibbles)`);
    H.push(e.bind(`i8x16.swizzle(hexTab, ${hi.v})`));
    L.push(e.bind(`i8x16.swizzle(hexTab, ${lo.v})`));
  }
  // Message word 2+2k = chars 8k+1..8k+4 = L3 H2 L2 H1 (big-endian) -> LE bytes H1 L2 H2 L3.
  // Message word 3+2k = chars 8k+5..8k+8 = L1 H0 L0 | next word's H3.
  const EVEN = "1, 18, 2, 19, 5, 22, 6, 23, 9, 26, 10, 27, 13, 30, 14, 31"; // H1 L2 H2 L3 per lane (H=a, L=b)
  // LE bytes of (word 3+2k) before the shift: L0 H0 L1 x  ->  << 8 gives 0 L0 H0 L1
  const ODD = "16, 0, 17, 0, 20, 4, 21, 4, 24, 8, 25, 8, 28, 12, 29, 12";
  const w = [e.c(0x73686132)]; // "sha2"
  // word 1 = "56:" + first hex char (H3 of state word 0)
  w.push(e.bind(`v128.or(i32x4.splat(0x35363a00), i32x4.shr_u(${H[0].v}, 24))`));
  for (let k = 0; k < 8; k++) {
    w.push(e.bind(`i8x16.shuffle(${H[k].v}, ${L[k].v}, ${EVEN})`));
    const shifted = e.bind(`i32x4.shl(i8x16.shuffle(${H[k].v}, ${L[k].v}, ${ODD}), 8)`);
    const next = k < 7 ? `i32x4.shr_u(${H[k + 1].v}, 24)` : "i32x4.splat(0x20)";
    w.push(e.bind(`v128.or(${shifted.v}, ${next})`));
  }
  // words 18..33 from the DiffID strings (bytes 0..63), 34..35 from bytes 64..71
  for (let k = 0; k < 4; k++) w.push(...transposeLoad(e, ptrs, k * 16));
  const tail = transposeLoad(e, ptrs, 64);
  w.push(tail[0]);
  w.push(e.bind(`v128.or(v128.and(${tail[1].v}, i32x4.splat(0xffffff00)), i32x4.splat(0x80))`));
  for (let i = 36; i < 47; i++) w.push(e.c(0));
  w.push(e.c(143 * 8));
  if (w.length !== 48) throw new Error(`chain message has ${w.length} words`);
  for (const [i, x] of w.entries()) e.lines.push(`  v128.store(w, ${e.materialize(x)}, ${i * 16});`);
  for (const [i, x] of IV.entries()) e.lines.push(`  v128.store(st, i32x4.splat(${hex(x)}), ${i * 16});`);
  parts.push(`/**
 * The message of one ChainID step for 4 chains at once: from lane j's state at
 * \`st\` (the previous ChainID), "sha256:<prev hex> " + the DiffID string at d_j
 * (71 bytes; 80 readable), padded: 48 message-word vectors stored at \`w\`.
 * Resets the state to the IV, ready for 3 calls of compress4w.
 */
export function chainMsg4(st: usize, d0: usize, d1: usize, d2: usize, d3: usize, w: usize): void {
${e.lines.join("\n")}
}
`);
}


// ---------------------------------------------------------------- SIMD: 4 blocks, words in memory
{
  const e = new Emitter(true, "y");
  const st = loadState(e, "st");
  const w = [];
  for (let i = 0; i < 16; i++) w.push(e.bind(`v128.load(w, ${i * 16})`));
  const out = compress(e, st, w);
  storeState(e, "st", out);
  parts.push(`/** Like compress4, with the 16 message-word vectors already in memory at \`w\`. */
export function compress4w(st: usize, w: usize): void {
${e.lines.join("\n")}
}
`);
}
// ---------------------------------------------------------------- SIMD: split schedule / rounds
// The lane-parallel compression split in two passes: sched4* computes the
// 64 W+K vectors of one block into memory, compress4k runs the 64 rounds from
// there. The rounds then need only the 8 state vectors and a few temporaries
// (x64 has 16 vector registers; 8 state + a 16-word schedule window do not
// fit and spill), and a block whose W+K is known in advance (the all-padding
// last block of equal-length messages) skips the schedule entirely.
{
  const kv = [];
  for (const k of K) kv.push(k, k, k, k);
  parts.push(`// K[t] in all 4 lanes, 64 vectors (the constant of W+K, loaded instead of materialised).
export const KV: usize = memory.data<u32>([${kv.map(hex).join(", ")}]);
`);
}

/** Emit the schedule of 16 word values `w` (constants allowed) as 64 W+K stores at `wk`. */
function scheduleStores(e, w) {
  const W = w.slice();
  const store = (t) => {
    const x = W[t];
    if (x.c !== undefined) e.lines.push(`  v128.store(wk, ${e.lit(e.c(x.c + K[t]))}, ${t * 16});`);
    else e.lines.push(`  v128.store(wk, i32x4.add(${x.v}, v128.load(KV, ${t * 16})), ${t * 16});`);
  };
  for (let t = 0; t < 16; t++) store(t);
  for (let t = 16; t < 64; t++) {
    const s0 = e.sigma(W[t - 15], 7, 18, 3, true);
    const s1 = e.sigma(W[t - 2], 17, 19, 10, true);
    W[t] = e.add(s1, W[t - 7], s0, W[t - 16]);
    store(t);
  }
}

{
  const e = new Emitter(true, "u");
  const w = [];
  for (let k = 0; k < 4; k++) w.push(...transposeLoad(e, ["p0", "p1", "p2", "p3"], k * 16));
  scheduleStores(e, w);
  parts.push(`/** W+K (64 vectors at \`wk\`) of one 64-byte block of each of 4 messages (lane j: the block at p_j). */
export function sched4p(p0: usize, p1: usize, p2: usize, p3: usize, wk: usize): void {
${e.lines.join("\n")}
}
`);
}
{
  const e = new Emitter(true, "ww");
  const w = [];
  for (let i = 0; i < 16; i++) w.push(e.bind(`v128.load(w, ${i * 16})`));
  scheduleStores(e, w);
  parts.push(`/** W+K (64 vectors at \`wk\`) from 16 message-word vectors at \`w\`. */
export function sched4w(w: usize, wk: usize): void {
${e.lines.join("\n")}
}
`);
}
{
  // Last block of a ChainID step: words 0..3 from memory, 4..14 zero, 15 = 143*8 bits.
  const e = new Emitter(true, "z");
  const w = [];
  for (let i = 0; i < 4; i++) w.push(e.bind(`v128.load(w, ${i * 16})`));
  for (let i = 4; i < 15; i++) w.push(e.c(0));
  w.push(e.c(143 * 8));
  scheduleStores(e, w);
  parts.push(`/** W+K of the last block of a ChainID step (only words 0..3 vary; the rest is padding, folded). */
export function sched4chainTail(w: usize, wk: usize): void {
${e.lines.join("\n")}
}
`);
}
{
  const e = new Emitter(true, "r");
  const st = loadState(e, "st");
  const out = compress(e, st, [], (t) => e.bind(`v128.load(wk, ${t * 16})`));
  storeState(e, "st", out);
  parts.push(`/** 64 rounds on the 4-lane state at \`st\` with the W+K vectors at \`wk\` (from sched4*). */
export function compress4k(st: usize, wk: usize): void {
${e.lines.join("\n")}
}
`);
}

writeFileSync(join(here, "..", "assembly", "rounds.ts"), parts.join("\n"));
console.log("wrote assembly/rounds.ts");
