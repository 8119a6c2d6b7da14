// The SIMD part of the SHA-256 core (built with --enable simd): many messages
// and many ChainIDs at once, 4 independent messages/chains in the 4 lanes of
// i32x4 vectors (multi-buffer). asc does not vectorise scalar code, so the
// lane-parallel rounds are written with v128 operations (see rounds.ts).
import { chainMsg4, compress4, compress4w } from "./rounds";
import { IDLE, initHex, IV, parseWord, ST4, TAIL, writeLaneRecord } from "./core";

export * from "./core";


// Lane bookkeeping (4 lanes).
const L_MSG: usize = memory.data(16, 16); // i32 message index, -1 = idle
const L_PTR: usize = memory.data(16, 16); // next full data block
const L_FULL: usize = memory.data(16, 16); // full data blocks left
const L_TAIL: usize = memory.data(16, 16); // tail blocks left
const L_TPTR: usize = memory.data(16, 16); // next tail block

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
  memory.fill(tail, 0, 128);
  memory.copy(tail, p + (full << 6), rem);
  store<u8>(tail + rem, 0x80);
  const tailBlocks: usize = rem < 56 ? 1 : 2;
  store<u64>(tail + (tailBlocks << 6) - 8, bswap<u64>(<u64>len << 3));
  lset(L_MSG, j, m);
  lset(L_PTR, j, <u32>p);
  lset(L_FULL, j, <u32>full);
  lset(L_TAIL, j, <u32>tailBlocks);
  lset(L_TPTR, j, <u32>tail);
  setLaneIV(j);
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
    }
  }
  while (active > 0) {
    const p0 = nextBlock(0);
    const p1 = nextBlock(1);
    const p2 = nextBlock(2);
    const p3 = nextBlock(3);
    compress4(ST4, p0, p1, p2, p3);
    for (let j: usize = 0; j < 4; j++) {
      const m = <i32>lget(L_MSG, j);
      if (m < 0 || lget(L_FULL, j) != 0 || lget(L_TAIL, j) != 0) continue;
      writeLaneRecord(out + <usize>m * 71, j);
      if (next < n) {
        const o = load<u32>(offsPtr + (<usize>next << 2));
        const e = load<u32>(offsPtr + (<usize>next << 2) + 4);
        startMessage(j, next, data + o, e - o);
        next++;
      } else {
        lset(L_MSG, j, -1);
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
    compress4w(ST4, WV);
    compress4w(ST4, WV + 256);
    compress4w(ST4, WV + 512);
    for (let j: usize = 0; j < 4; j++) {
      const c = <i32>lget(C_CHAIN, j);
      if (c < 0) continue;
      const left = lget(C_LEFT, j) - 1;
      if (left != 0) {
        lset(C_LEFT, j, left);
        lset(C_PTR, j, lget(C_PTR, j) + 71);
        continue;
      }
      writeLaneRecord(out + <usize>c * 71, j);
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
