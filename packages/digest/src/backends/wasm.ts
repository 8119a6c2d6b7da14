import { parseDigest, type Digest } from "../digest.js";
import { UnavailableError } from "../errors.js";
import { SHA256_SCALAR_WASM, SHA256_SIMD_WASM } from "../generated/sha256-wasm.js";
import type { Input, Sha256Backend, Sha256Hash } from "../types.js";

/** What the AssemblyScript core exports (see assembly/core.ts and assembly/simd.ts). */
interface CoreExports {
  memory: WebAssembly.Memory;
  ioBase(): number;
  ctxPtr(): number;
  ctxInit(): void;
  ctxUpdate(p: number, len: number): void;
  ctxFinal(out: number): void;
  hashOne(p: number, len: number, out: number): void;
  chainAll(strs: number, n: number, out: number): void;
  validateScalar(strs: number, n: number): number;
  // SIMD build only:
  hashMany?(offs: number, n: number, data: number, out: number): void;
  chainMany?(strs: number, lens: number, n: number, out: number): void;
  validate?(strs: number, n: number): number;
}

// The smallest module using a v128 instruction: (func (result v128) v128.const 0) — validates
// only where WebAssembly SIMD is supported.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 11,
]);

/** True when this runtime runs WebAssembly SIMD (so the multi-buffer paths are used). */
export function wasmSimdSupported(): boolean {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

function fromBase64(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const IO_CHUNK = 64 * 1024; // streaming input is copied into WASM memory in chunks of this size
const PAGE = 65536;
const RECORD = 71; // "sha256:" + 64 hex, as the core writes digests
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Node's Buffer (a global there; absent in browsers) turns ASCII bytes into a
// string several times faster than Node's TextDecoder (latin1 = one-byte
// string, a memcpy); browsers' TextDecoder is fast.
const NodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBufferLike, off: number, len: number): { toString(enc: "latin1"): string } } }).Buffer;

/** The ASCII bytes [start, end) of u8 as a string. */
function asciiString(u8: Uint8Array, start: number, end: number): string {
  if (NodeBuffer !== undefined) return NodeBuffer.from(u8.buffer, u8.byteOffset + start, end - start).toString("latin1");
  return decoder.decode(u8.subarray(start, end));
}

/** The instantiated core with views that follow memory growth. */
class Core {
  readonly x: CoreExports;
  readonly simd: boolean;
  readonly io: number;
  readonly ctx: number;
  readonly ivCtx: Uint8Array;
  #u8: Uint8Array;
  /** The hash whose context is in WASM memory now (contexts are swapped in and out). */
  active: WasmHash | undefined;

  constructor(module: WebAssembly.Module, simd: boolean) {
    const instance = new WebAssembly.Instance(module, {
      env: {
        abort() {
          throw new Error("sha256 wasm: abort");
        },
      },
    });
    this.x = instance.exports as unknown as CoreExports;
    this.simd = simd;
    this.io = this.x.ioBase();
    this.ctx = this.x.ctxPtr();
    this.#u8 = new Uint8Array(this.x.memory.buffer);
    this.reserve(IO_CHUNK * 2);
    this.x.ctxInit();
    this.ivCtx = this.u8.slice(this.ctx, this.ctx + 128);
  }

  get u8(): Uint8Array {
    if (this.#u8.buffer !== this.x.memory.buffer) this.#u8 = new Uint8Array(this.x.memory.buffer);
    return this.#u8;
  }

  /** Make sure [io, io + bytes) is addressable. */
  reserve(bytes: number): void {
    const need = this.io + bytes + 256;
    const have = this.x.memory.buffer.byteLength;
    if (need > have) this.x.memory.grow(Math.ceil((need - have) / PAGE));
  }

  /** Read `n` 71-byte records at `p` as digest strings. */
  records(p: number, n: number): Digest[] {
    const out = new Array<Digest>(n);
    if (n === 1) {
      out[0] = decoder.decode(this.u8.subarray(p, p + RECORD)) as Digest;
      return out;
    }
    const s = asciiString(this.u8, p, p + RECORD * n);
    for (let i = 0; i < n; i++) out[i] = s.substring(i * RECORD, i * RECORD + RECORD) as Digest;
    return out;
  }

  /** Read `n` 71-byte records at `p` into out[at..at+n). */
  recordsInto(p: number, n: number, out: Digest[], at: number): void {
    const s = asciiString(this.u8, p, p + RECORD * n);
    for (let i = 0; i < n; i++) out[at + i] = s.substring(i * RECORD, i * RECORD + RECORD) as Digest;
  }

  /** Save the active hash's context so another may use the WASM context area. */
  release(): void {
    if (this.active !== undefined) {
      this.active.saveCtx(this.u8.subarray(this.ctx, this.ctx + 128));
      this.active = undefined;
    }
  }
}

let core: Core | undefined;
let scalarCore: Core | undefined;
let compiled: Promise<void> | undefined;

function instantiate(module: WebAssembly.Module, simd: boolean): Core {
  core ??= new Core(module, simd);
  return core;
}

/** The core, compiled and instantiated on first use (synchronously; ~50 KB of WASM). */
function getCore(): Core {
  if (core !== undefined) return core;
  if (typeof WebAssembly !== "object") throw new UnavailableError("sha256: WebAssembly is not available here");
  const simd = wasmSimdSupported();
  const bytes = fromBase64(simd ? SHA256_SIMD_WASM : SHA256_SCALAR_WASM);
  return instantiate(new WebAssembly.Module(bytes), simd);
}

/** The scalar (no SIMD) build, whatever the runtime supports. */
function getScalarCore(): Core {
  if (typeof WebAssembly !== "object") throw new UnavailableError("sha256: WebAssembly is not available here");
  scalarCore ??= new Core(new WebAssembly.Module(fromBase64(SHA256_SCALAR_WASM)), false);
  return scalarCore;
}

/**
 * Compile and instantiate the WASM core asynchronously (optional). Use it
 * where synchronous compilation is refused or would block a UI thread (some
 * browsers limit synchronous `WebAssembly.Module` on the main thread); every
 * other entry point instantiates on first use.
 */
export function initWasm(): Promise<void> {
  if (core !== undefined) return Promise.resolve();
  compiled ??= (async () => {
    const simd = wasmSimdSupported();
    const module = await WebAssembly.compile(fromBase64(simd ? SHA256_SIMD_WASM : SHA256_SCALAR_WASM));
    instantiate(module, simd);
  })();
  return compiled;
}

/** Whether the loaded WASM core is the SIMD build (instantiates it). */
export function wasmUsesSimd(): boolean {
  return getCore().simd;
}

function toBytes(data: Input): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  throw new TypeError(`sha256: expected a Uint8Array or a string, got ${typeof data}`);
}

/** Copy `data` into the I/O region in chunks, calling `fn(len)` after each. */
function feed(c: Core, data: Uint8Array, fn: (len: number) => void): void {
  for (let off = 0; off < data.length; off += IO_CHUNK) {
    const part = data.subarray(off, Math.min(off + IO_CHUNK, data.length));
    c.u8.set(part, c.io);
    fn(part.length);
  }
}

/** Incremental hash on the WASM core. Its 128-byte context lives in JS while another hash runs. */
class WasmHash implements Sha256Hash {
  #saved: Uint8Array | undefined;
  #done = false;
  readonly #core: Core;

  constructor(c: Core) {
    this.#core = c;
    this.#saved = c.ivCtx.slice();
  }

  saveCtx(ctx: Uint8Array): void {
    this.#saved = ctx.slice();
  }

  #enter(): Core {
    const c = this.#core;
    if (this.#done) throw new Error("sha256: hash already finished");
    if (c.active !== this) {
      c.release();
      c.u8.set(this.#saved!, c.ctx);
      this.#saved = undefined;
      c.active = this;
    }
    return c;
  }

  update(data: Input): this {
    const c = this.#enter();
    const bytes = toBytes(data);
    feed(c, bytes, (len) => c.x.ctxUpdate(c.io, len));
    return this;
  }

  #finish(): number {
    const c = this.#enter();
    c.x.ctxFinal(c.io);
    c.active = undefined;
    this.#done = true;
    return c.io;
  }

  digest(): Digest {
    const p = this.#finish();
    return this.#core.records(p + 32, 1)[0]!;
  }

  digestInto(out: Uint8Array): void {
    if (out.length < 32) throw new RangeError("sha256: digestInto needs 32 bytes");
    const p = this.#finish();
    out.set(this.#core.u8.subarray(p, p + 32));
  }

  destroy(): void {
    if (this.#core.active === this) this.#core.active = undefined;
    this.#saved = undefined;
    this.#done = true;
  }
}

const ONE_SHOT_MAX = 1 << 20;

function hashOneOn(c: Core, data: Input): Digest {
  const bytes = toBytes(data);
  if (bytes.length > ONE_SHOT_MAX) {
    const h = new WasmHash(c);
    h.update(bytes);
    return h.digest();
  }
  c.release();
  c.reserve(bytes.length + 128);
  c.u8.set(bytes, c.io);
  const out = (c.io + bytes.length + 63) & ~63;
  c.x.hashOne(c.io, bytes.length, out);
  return c.records(out + 32, 1)[0]!;
}

const BATCH_BYTES = 4 << 20; // message bytes per WASM call of hashMany
const BATCH_COUNT = 1 << 16;

/** hashMany on the SIMD core: batches of up to 4 MiB / 65,536 messages, one call each. */
function hashManySimd(c: Core, messages: readonly Input[]): Digest[] {
  const out: Digest[] = new Array(messages.length);
  let i = 0;
  while (i < messages.length) {
    // Choose the batch [i, j): bytes as they will be written (strings at most 3 bytes per char).
    let j = i;
    let bytes = 0;
    while (j < messages.length && j - i < BATCH_COUNT) {
      const m = messages[j]!;
      const size = typeof m === "string" ? m.length * 3 : m.length;
      if (j > i && bytes + size > BATCH_BYTES) break;
      bytes += size;
      j++;
    }
    const n = j - i;
    if (n === 1 && bytes > BATCH_BYTES) {
      out[i] = hashOneOn(c, messages[i]!);
      i = j;
      continue;
    }
    const offsBytes = (n + 1) * 4;
    const dataStart = (offsBytes + 63) & ~63;
    c.reserve(dataStart + bytes + 64 + n * RECORD + 64);
    const u8 = c.u8;
    const offs = new Uint32Array(u8.buffer, c.io, n + 1);
    const data = c.io + dataStart;
    let o = 0;
    // Byte messages that follow each other in one buffer (subarrays of a
    // larger read, the common case) are copied as one run: one set() per run
    // instead of one per message. `.buffer` is read only when a message starts
    // where the run ends (a candidate for the same buffer): on a typed array
    // V8 keeps on the JS heap (≤ 64 bytes, e.g. `new Uint8Array(64)` or a
    // `slice()`), reading `.buffer` moves its bytes to a new ArrayBuffer,
    // which cost more than hashing them (sha256Many on separate 64-byte
    // buffers ran at 0.6× node:crypto). A run of one message is copied from
    // the message itself.
    let runMsg: Uint8Array | undefined; // first message of the current run
    let runBuf: ArrayBufferLike | undefined; // its buffer, once read
    let runStart = 0;
    let runEnd = 0;
    let runDst = 0;
    const flush = (): void => {
      if (runMsg === undefined) return;
      if (runEnd - runStart === runMsg.length) u8.set(runMsg, runDst);
      else u8.set(new Uint8Array(runBuf!, runStart, runEnd - runStart), runDst);
      runMsg = undefined;
    };
    for (let k = 0; k < n; k++) {
      const m = messages[i + k]!;
      offs[k] = o;
      if (typeof m === "string") {
        flush();
        o += encoder.encodeInto(m, u8.subarray(data + o, data + o + m.length * 3)).written;
      } else if (m instanceof Uint8Array) {
        const off = m.byteOffset;
        if (runMsg !== undefined && off === runEnd && m.length > 0 && (runBuf ??= runMsg.buffer) === m.buffer) {
          runEnd = off + m.length;
        } else {
          flush();
          runMsg = m;
          runBuf = undefined;
          runStart = off;
          runEnd = off + m.length;
          runDst = data + o;
        }
        o += m.length;
      } else {
        throw new TypeError(`sha256Many: message ${i + k} is not a Uint8Array or a string`);
      }
    }
    flush();
    offs[n] = o;
    const outPtr = (data + o + 63) & ~63;
    c.x.hashMany!(c.io, n, data, outPtr);
    c.recordsInto(outPtr, n, out, i);
    i = j;
  }
  return out;
}

const CHAIN_BATCH = 1 << 16; // DiffIDs per WASM call of chainMany

/**
 * Copy DiffID strings (71 chars each) into WASM memory at `p`; returns false
 * when a string is not 71 ASCII characters (the caller then takes the generic path).
 */
function writeDiffIds(u8: Uint8Array, p: number, ids: readonly string[]): boolean {
  for (const d of ids) if (typeof d !== "string" || d.length !== RECORD) return false;
  const s = ids.length === 1 ? ids[0]! : ids.join("");
  return encoder.encodeInto(s, u8.subarray(p, p + s.length)).written === s.length && s.length === ids.length * RECORD;
}

function validateAt(c: Core, p: number, n: number, ids: (i: number) => string): void {
  const bad = c.simd ? c.x.validate!(p, n) : c.x.validateScalar(p, n);
  if (bad >= 0) parseDigest(ids(bad)); // throws the precise typed error
  if (bad >= 0) throw new Error(`sha256: invalid DiffID ${JSON.stringify(ids(bad))}`);
}

/** Generic ChainIDs (any valid digests, e.g. sha512 DiffIDs) on a one-shot hash. */
function chainIdsGeneric(c: Core, diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  let cur: string | undefined;
  for (const d of diffIds) {
    cur = cur === undefined ? parseDigest(d) : hashOneOn(c, `${cur} ${parseDigest(d)}`);
    out.push(cur as Digest);
  }
  return out;
}

function chainIdsOn(c: Core, diffIds: readonly Digest[]): Digest[] {
  const n = diffIds.length;
  if (n === 0) return [];
  c.reserve(n * RECORD * 2 + 256);
  const strs = c.io;
  if (!writeDiffIds(c.u8, strs, diffIds)) return chainIdsGeneric(c, diffIds);
  validateAt(c, strs, n, (i) => diffIds[i]!);
  const out = (strs + n * RECORD + 64 + 63) & ~63;
  c.x.chainAll(strs, n, out);
  return c.records(out, n);
}

function chainIdManyOn(c: Core, chains: readonly (readonly Digest[])[]): Digest[] {
  // Below 3 chains the scalar core beats SIMD lanes that would idle.
  if (!c.simd || chains.length < 3) {
    return chains.map((chain) => {
      if (chain.length === 0) throw new RangeError("chainIdMany: empty chain");
      return chainIdsOn(c, chain)[chain.length - 1]!;
    });
  }
  const result: Digest[] = new Array(chains.length);
  let i = 0;
  while (i < chains.length) {
    let j = i;
    let total = 0;
    while (j < chains.length && (j === i || total + chains[j]!.length <= CHAIN_BATCH)) total += chains[j++]!.length;
    const n = j - i;
    const lensStart = 0;
    const strsStart = (n * 4 + 63) & ~63;
    c.reserve(strsStart + total * RECORD + 64 + n * RECORD + 64);
    const u8 = c.u8;
    const lens = new Uint32Array(u8.buffer, c.io + lensStart, n);
    let p = c.io + strsStart;
    let generic = false;
    for (let k = 0; k < n; k++) {
      const chain = chains[i + k]!;
      if (chain.length === 0) throw new RangeError("chainIdMany: empty chain");
      lens[k] = chain.length;
      if (!writeDiffIds(u8, p, chain)) {
        generic = true;
        break;
      }
      p += chain.length * RECORD;
    }
    if (generic) {
      for (let k = 0; k < n; k++) {
        const chain = chains[i + k]!;
        result[i + k] = chainIdsGeneric(c, chain)[chain.length - 1]!;
      }
      i = j;
      continue;
    }
    const strs = c.io + strsStart;
    validateAt(c, strs, total, (bad) => {
      let k = i;
      let b = bad;
      while (b >= chains[k]!.length) b -= chains[k++]!.length;
      return chains[k]![b]!;
    });
    const outPtr = (p + 64 + 63) & ~63;
    c.x.chainMany!(strs, c.io + lensStart, n, outPtr);
    c.recordsInto(outPtr, n, result, i);
    i = j;
  }
  return result;
}

function makeWasmBackend(name: string, get: () => Core): Sha256Backend {
  return {
    name,
    validatesDiffIds: true,
    hash: (data) => hashOneOn(get(), data),
    create: () => new WasmHash(get()),
    hashMany(messages) {
      const c = get();
      if (messages.length === 0) return [];
      if (!c.simd || messages.length < 4) return messages.map((m) => hashOneOn(c, m));
      return hashManySimd(c, messages);
    },
    chainIds: (diffIds) => chainIdsOn(get(), diffIds),
    chainIdMany: (chains) => chainIdManyOn(get(), chains),
  };
}

/**
 * The WebAssembly backend: berth's AssemblyScript SHA-256 core, embedded
 * (no file reads), instantiated on first use. Batch operations cross into
 * WASM once per batch and hash 4 messages/chains at a time in SIMD lanes
 * (the scalar build is used where WebAssembly SIMD is missing).
 */
export const wasmBackend: Sha256Backend = makeWasmBackend("wasm", getCore);

/** The scalar (no-SIMD) build of the WASM core, as used where SIMD is missing (for tests and comparison). */
export const wasmScalarBackend: Sha256Backend = makeWasmBackend("wasm-scalar", getScalarCore);
