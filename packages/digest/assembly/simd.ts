// The SIMD part of the SHA-256 core (built with --enable simd): many messages
// and many ChainIDs at once, 4 independent messages/chains in the 4 lanes of
// i32x4 vectors (multi-buffer). asc does not vectorise scalar code, so the
// lane-parallel rounds are written with v128 operations (see rounds.ts).
import { chainMsg4, compress4k, sched4chainTail, sched4p, sched4w } from "./rounds";
import { IDLE, initHex, IV, parseWord, ST4, TAIL } from "./core";

export * from "./core";


/** 16 bytes of digest (4 state words in a) as 32 hex chars at p. */
@inline
function hex16(p: usize, a: v128): void {
  const hexTab = i8x16(0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66);
  const low = i8x16.splat(0x0f);
  // big-endian bytes of each word first
  const b = i8x16.swizzle(a, i8x16(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12));
  const hi = i8x16.swizzle(hexTab, v128.and(i16x8.shr_u(b, 4), low));
  const lo = i8x16.swizzle(hexTab, v128.and(b, low));
  v128.store(p, i8x16.shuffle(hi, lo, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
  v128.store(p, i8x16.shuffle(hi, lo, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), 16);
}

/** Write the 71-byte record "sha256:<hex>" of lane j of the 4-lane state at ST4 (SIMD hex). */
function writeLaneHex(out: usize, j: usize): void {
  const base = ST4 + (j << 2);
  let a = v128.load32_zero(base);
  a = v128.load32_lane(base, a, 1, 16);
  a = v128.load32_lane(base, a, 2, 32);
  a = v128.load32_lane(base, a, 3, 48);
  let b = v128.load32_zero(base, 64);
  b = v128.load32_lane(base, b, 1, 80);
  b = v128.load32_lane(base, b, 2, 96);
  b = v128.load32_lane(base, b, 3, 112);
  // "sha256:" = 73 68 61 32 35 36 3a
  store<u32>(out, 0x32616873);
  store<u16>(out, 0x3635, 4);
  store<u8>(out, 0x3a, 6);
  hex16(out + 7, a);
  hex16(out + 39, b);
}

// W+K of the block being compressed (64 vectors, from sched4*).
const WKV: usize = memory.data(64 * 16, 16);

// Lane bookkeeping (4 lanes).
const L_MSG: usize = memory.data(16, 16); // i32 message index, -1 = idle
const L_PTR: usize = memory.data(16, 16); // next full data block
const L_FULL: usize = memory.data(16, 16); // full data blocks left
const L_TAIL: usize = memory.data(16, 16); // tail blocks left
const L_TPTR: usize = memory.data(16, 16); // next tail block
const L_PAD: usize = memory.data(16, 16); // message length if its last block is padding only, else PAD_NONE

@inline
function lget(a: usize, j: usize): u32 {
  return load<u32>(a + (j << 2));
}
@inline
function lset(a: usize, j: usize, v: u32): void {
  store<u32>(a + (j << 2), v);
}

function setLaneIV(j: usize): void {
  for (let i: usize = 0; i < 8; i++) store<u32>(ST4 + (i << 4) + (j << 2), load<u32>(IV + (i << 2)));
}

/** Start message m (bytes [p, p+len)) in lane j. */
function startMessage(j: usize, m: u32, p: usize, len: usize): void {
  const full = len >> 6;
  const rem = len & 63;
  const tail = TAIL + (j << 7);
  // The rem data bytes of the last partial block, copied 16 at a time (the
  // bytes past rem masked to zero; reading up to 63 bytes past the message is
  // safe, the I/O region has slack), then 64 zero bytes: no memory.fill/copy
  // calls (V8 makes those calls out of the WASM code).
  const src = p + (full << 6);
  const iota = i8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const remv = i8x16.splat(<i8>rem);
  const zero = i32x4.splat(0);
  v128.store(tail, v128.and(v128.load(src), i8x16.gt_s(remv, iota)));
  v128.store(tail, v128.and(v128.load(src, 16), i8x16.gt_s(i8x16.sub(remv, i8x16.splat(16)), iota)), 16);
  v128.store(tail, v128.and(v128.load(src, 32), i8x16.gt_s(i8x16.sub(remv, i8x16.splat(32)), iota)), 32);
  v128.store(tail, v128.and(v128.load(src, 48), i8x16.gt_s(i8x16.sub(remv, i8x16.splat(48)), iota)), 48);
  v128.store(tail, zero, 64);
  v128.store(tail, zero, 80);
  v128.store(tail, zero, 96);
  v128.store(tail, zero, 112);
  store<u8>(tail + rem, 0x80);
  const tailBlocks: usize = rem < 56 ? 1 : 2;
  store<u64>(tail + (tailBlocks << 6) - 8, bswap<u64>(<u64>len << 3));
  lset(L_MSG, j, m);
  lset(L_PTR, j, <u32>p);
  lset(L_FULL, j, <u32>full);
  lset(L_TAIL, j, <u32>tailBlocks);
  lset(L_TPTR, j, <u32>tail);
  // The last block is padding only (0x80 or nothing, zeros, the length) when
  // the data ends on or just before its start: its W+K depends on len alone.
  lset(L_PAD, j, rem == 0 || rem >= 56 ? <u32>len : PAD_NONE);
  setLaneIV(j);
}

const PAD_NONE: u32 = 0xffffffff;
// W+K of the all-padding last block for message length padLen (64 vectors).
const PADWK: usize = memory.data(64 * 16, 16);
const PADBLOCK: usize = memory.data(64, 16);
let padLen: u32 = PAD_NONE;

/** Compute PADWK for messages of len bytes whose last block is padding only. */
function makePadWK(len: u32): void {
  memory.fill(PADBLOCK, 0, 64);
  if ((len & 63) == 0) store<u8>(PADBLOCK, 0x80);
  store<u64>(PADBLOCK, bswap<u64>(<u64>len << 3), 56);
  sched4p(PADBLOCK, PADBLOCK, PADBLOCK, PADBLOCK, PADWK);
  padLen = len;
}

/**
 * True when all 4 lanes are at their last block, it is padding only and the
 * 4 messages have the same length: the block's W+K is PADWK (no schedule).
 */
@inline
function allPadding(): bool {
  const pad = v128.load(L_PAD);
  const same = i32x4.eq(pad, i32x4.splat(lget(L_PAD, 0)));
  const last = v128.and(i32x4.eq(v128.load(L_FULL), i32x4.splat(0)), i32x4.eq(v128.load(L_TAIL), i32x4.splat(1)));
  return lget(L_PAD, 0) != PAD_NONE && i32x4.all_true(v128.and(same, last));
}

@inline
function nextBlock(j: usize): usize {
  if (<i32>lget(L_MSG, j) < 0) return IDLE;
  const full = lget(L_FULL, j);
  if (full != 0) {
    const p = lget(L_PTR, j);
    lset(L_PTR, j, p + 64);
    lset(L_FULL, j, full - 1);
    return p;
  }
  const t = lget(L_TPTR, j);
  lset(L_TPTR, j, t + 64);
  lset(L_TAIL, j, lget(L_TAIL, j) - 1);
  return t;
}

/**
 * Digest n messages: message i is the bytes [data + offs[i], data + offs[i+1])
 * (offs: n+1 u32 at offsPtr). Writes n 71-byte records "sha256:<hex>" at out.
 * Messages advance 4 at a time in SIMD lanes; a lane that finishes takes the
 * next message at once, so lanes stay busy whatever the lengths.
 */
export function hashMany(offsPtr: usize, n: u32, data: usize, out: usize): void {
  initHex();
  let next: u32 = 0;
  let active = 0;
  for (let j: usize = 0; j < 4; j++) {
    if (next < n) {
      const o = load<u32>(offsPtr + (<usize>next << 2));
      const e = load<u32>(offsPtr + (<usize>next << 2) + 4);
      startMessage(j, next, data + o, e - o);
      next++;
      active++;
    } else {
      lset(L_MSG, j, -1);
      lset(L_PAD, j, PAD_NONE);
    }
  }
  while (active > 0) {
    if (allPadding()) {
      // Idle lanes have L_PAD = PAD_NONE, so all 4 lanes are active here.
      if (lget(L_PAD, 0) != padLen) makePadWK(lget(L_PAD, 0));
      v128.store(L_TAIL, i32x4.splat(0));
      compress4k(ST4, PADWK);
    } else {
      const p0 = nextBlock(0);
      const p1 = nextBlock(1);
      const p2 = nextBlock(2);
      const p3 = nextBlock(3);
      sched4p(p0, p1, p2, p3, WKV);
      compress4k(ST4, WKV);
    }
    for (let j: usize = 0; j < 4; j++) {
      const m = <i32>lget(L_MSG, j);
      if (m < 0 || lget(L_FULL, j) != 0 || lget(L_TAIL, j) != 0) continue;
      writeLaneHex(out + <usize>m * 71, j);
      if (next < n) {
        const o = load<u32>(offsPtr + (<usize>next << 2));
        const e = load<u32>(offsPtr + (<usize>next << 2) + 4);
        startMessage(j, next, data + o, e - o);
        next++;
      } else {
        lset(L_MSG, j, -1);
        lset(L_PAD, j, PAD_NONE);
        active--;
      }
    }
  }
}

// ------------------------------------------------------------------ ChainIDs

// 48 message-word vectors of one ChainID step (3 blocks x 16 x v128).
const WV: usize = memory.data(48 * 16, 16);

const C_CHAIN: usize = memory.data(16, 16); // i32 chain index, -1 = idle
const C_PTR: usize = memory.data(16, 16); // next DiffID string
const C_LEFT: usize = memory.data(16, 16); // steps left

/** Set lane j's state to the digest whose "sha256:<hex>" string is at s. */
function setLaneFromString(j: usize, s: usize): void {
  for (let i: usize = 0; i < 8; i++) store<u32>(ST4 + (i << 4) + (j << 2), parseWord(s + 7 + (i << 3)));
}

/**
 * The top ChainID of n chains. The DiffIDs of all chains are 71-byte strings
 * "sha256:<hex>" back to back at strs (chain after chain, validated, with at
 * least 16 readable bytes after the last); lens: n u32 chain lengths (>= 1).
 * Writes n 71-byte records at out. Chains advance 4 at a time in SIMD lanes;
 * a lane whose chain ends takes the next chain at once.
 */
export function chainMany(strs: usize, lensPtr: usize, n: u32, out: usize): void {
  initHex();
  let next: u32 = 0;
  let nextStr = strs;
  let active = 0;
  for (let j: usize = 0; j < 4; j++) {
    lset(C_CHAIN, j, -1);
    lset(C_PTR, j, <u32>IDLE);
    // Take chains until one needs hashing (a chain of one is its own ChainID).
    while (next < n) {
      const len = load<u32>(lensPtr + (<usize>next << 2));
      if (len == 1) {
        memory.copy(out + <usize>next * 71, nextStr, 71);
        nextStr += 71;
        next++;
        continue;
      }
      setLaneFromString(j, nextStr);
      lset(C_CHAIN, j, next);
      lset(C_PTR, j, <u32>(nextStr + 71));
      lset(C_LEFT, j, len - 1);
      nextStr += <usize>len * 71;
      next++;
      active++;
      break;
    }
  }
  while (active > 0) {
    chainMsg4(ST4, lget(C_PTR, 0), lget(C_PTR, 1), lget(C_PTR, 2), lget(C_PTR, 3), WV);
    sched4w(WV, WKV);
    compress4k(ST4, WKV);
    sched4w(WV + 256, WKV);
    compress4k(ST4, WKV);
    sched4chainTail(WV + 512, WKV);
    compress4k(ST4, WKV);
    for (let j: usize = 0; j < 4; j++) {
      const c = <i32>lget(C_CHAIN, j);
      if (c < 0) continue;
      const left = lget(C_LEFT, j) - 1;
      if (left != 0) {
        lset(C_LEFT, j, left);
        lset(C_PTR, j, lget(C_PTR, j) + 71);
        continue;
      }
      writeLaneHex(out + <usize>c * 71, j);
      lset(C_CHAIN, j, -1);
      lset(C_PTR, j, <u32>IDLE);
      active--;
      while (next < n) {
        const len = load<u32>(lensPtr + (<usize>next << 2));
        if (len == 1) {
          memory.copy(out + <usize>next * 71, nextStr, 71);
          nextStr += 71;
          next++;
          continue;
        }
        setLaneFromString(j, nextStr);
        lset(C_CHAIN, j, next);
        lset(C_PTR, j, <u32>(nextStr + 71));
        lset(C_LEFT, j, len - 1);
        nextStr += <usize>len * 71;
        next++;
        active++;
        break;
      }
    }
  }
}


/**
 * Check n 71-byte strings at strs are "sha256:" + 64 lowercase hex. Returns
 * the index of the first that is not, or -1.
 */
export function validate(strs: usize, n: u32): i32 {
  const zero = i8x16.splat(0x30);
  const a = i8x16.splat(0x61);
  const ten = i8x16.splat(10);
  const six = i8x16.splat(6);
  for (let i: u32 = 0; i < n; i++) {
    const s = strs + <usize>i * 71;
    if (load<u32>(s) != 0x32616873 || load<u16>(s, 4) != 0x3635 || load<u8>(s, 6) != 0x3a) return <i32>i;
    let ok = true;
    for (let k: usize = 0; k < 4; k++) {
      const v = v128.load(s + 7 + (k << 4));
      const isDigit = i8x16.lt_u(i8x16.sub(v, zero), ten);
      const isHex = i8x16.lt_u(i8x16.sub(v, a), six);
      if (!i8x16.all_true(v128.or(isDigit, isHex))) {
        ok = false;
        break;
      }
    }
    if (!ok) return <i32>i;
  }
  return -1;
}
