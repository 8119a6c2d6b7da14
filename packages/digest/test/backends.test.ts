// The same suite against every backend: the WASM core (SIMD build and the
// scalar fallback build), node:crypto, @noble/hashes and the root export's
// automatic choice. node:crypto (OpenSSL) is the reference in differential tests.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as auto from "../src/index.js";
import { makeDigestApi } from "../src/api.js";
import { MANY_WASM_MAX_AVG, manyUsesWasm } from "../src/backends/auto.js";
import { wasmScalarBackend } from "../src/backends/wasm.js";
import * as node from "../src/node.js";
import * as noble from "../src/noble.js";
import * as wasm from "../src/wasm.js";
import { type DigestApi, type Digest, hasCode } from "../src/index.js";

const nist = JSON.parse(readFileSync(new URL("./vectors/sha256-nist.json", import.meta.url), "utf8")) as {
  vectors: { name: string; ascii: string; repeat?: number; digest: string }[];
};
const chainVectors = JSON.parse(readFileSync(new URL("./vectors/chainid.json", import.meta.url), "utf8")) as {
  diffIds: string[];
  cases: { name: string; input: number[] | null; chainIds: string[]; chainId: string | null }[];
};

const ref = (data: Uint8Array | string): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** Deterministic pseudo-random bytes (xorshift) so failures reproduce. */
function prng(seed: number): (n: number) => Uint8Array {
  let s = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[i] = s & 255;
    }
    return out;
  };
}

const backends: [string, DigestApi][] = [
  ["wasm", wasm.api],
  ["wasm-scalar", makeDigestApi(wasmScalarBackend)],
  ["node", node.api],
  ["noble", noble.api],
  ["auto", auto.api],
];

describe.each(backends)("%s backend", (name, api) => {
  describe("NIST vectors", () => {
    it.each(nist.vectors)("$name", ({ ascii, repeat, digest }) => {
      const text = repeat ? ascii.repeat(repeat) : ascii;
      const bytes = new TextEncoder().encode(text);
      expect(api.sha256(bytes)).toBe(`sha256:${digest}`);
      expect(api.sha256(text)).toBe(`sha256:${digest}`);
      const h = api.sha256.create();
      for (let i = 0; i < bytes.length; i += 7919) h.update(bytes.subarray(i, i + 7919));
      expect(h.digest()).toBe(`sha256:${digest}`);
    });
  });

  it("matches node:crypto for every length 0..2000 (one-shot and streaming)", () => {
    const rnd = prng(2000);
    const all = rnd(2000);
    for (let n = 0; n <= 2000; n++) {
      const m = all.subarray(0, n);
      const want = ref(m);
      expect(api.sha256(m), `length ${n}`).toBe(want);
      const h = api.sha256.create();
      const cut = (n * 7) % (n + 1);
      h.update(m.subarray(0, cut)).update(m.subarray(cut));
      expect(h.digest(), `length ${n} split at ${cut}`).toBe(want);
    }
  });

  it("is correct for any update() split, including [1, 63] patterns", () => {
    const rnd = prng(7);
    const data = rnd(300_000);
    const want = ref(data);
    const patterns: number[][] = [[1, 63], [63, 1], [1], [65], [127, 1], [4095, 1, 64], [1 << 16], [100_003]];
    for (const pattern of patterns) {
      const h = api.sha256.create();
      let off = 0;
      for (let k = 0; off < data.length; k++) {
        const len = pattern[k % pattern.length]!;
        h.update(data.subarray(off, off + len));
        off += len;
      }
      expect(h.digest(), `pattern ${pattern.join(",")}`).toBe(want);
    }
    for (let trial = 0; trial < 20; trial++) {
      const sizes = prng(100 + trial);
      const h = api.sha256.create();
      let off = 0;
      while (off < data.length) {
        const len = 1 + ((sizes(2)[0]! << 8) | sizes(1)[0]!) % 20_000;
        h.update(data.subarray(off, off + len));
        off += len;
      }
      expect(h.digest(), `random split trial ${trial}`).toBe(want);
    }
  });

  it("keeps interleaved hashes apart (contexts do not leak)", () => {
    const rnd = prng(11);
    const a = rnd(10_000);
    const b = rnd(7_777);
    const ha = api.sha256.create();
    const hb = api.sha256.create();
    for (let i = 0; i < 10_000; i += 333) {
      ha.update(a.subarray(i, i + 333));
      if (i < b.length) hb.update(b.subarray(i, i + 333));
      api.sha256("interleaved one-shot");
    }
    expect(hb.digest()).toBe(ref(b));
    expect(ha.digest()).toBe(ref(a));
  });

  it("digestInto writes raw bytes; a finished hash refuses updates; destroy is idempotent", () => {
    const h = api.sha256.create().update("abc");
    const out = new Uint8Array(32);
    h.digestInto(out);
    expect(Buffer.from(out).toString("hex")).toBe(ref("abc").slice(7));
    expect(() => h.update("x")).toThrow();
    const d = api.sha256.create();
    d.update("x");
    d.destroy();
    d.destroy();
    expect(() => api.sha256.create().digestInto(new Uint8Array(31))).toThrow(RangeError);
  });

  it("sha256Many matches one-shot for mixed sizes and strings", () => {
    const rnd = prng(5);
    const msgs: (Uint8Array | string)[] = [];
    for (let i = 0; i < 1500; i++) msgs.push(rnd(i % 3 === 0 ? (i * 37) % 300 : (i * 131) % 5000));
    msgs.push("", "abc", "ünïcødé ✓", "x".repeat(100_000), new Uint8Array(5 << 20));
    const got = api.sha256Many(msgs);
    expect(got.length).toBe(msgs.length);
    for (let i = 0; i < msgs.length; i++) expect(got[i], `message ${i}`).toBe(ref(msgs[i]!));
    expect(api.sha256Many([])).toEqual([]);
    expect(api.sha256Many([new Uint8Array(64), new Uint8Array(64)])).toEqual([ref(new Uint8Array(64)), ref(new Uint8Array(64))]);
  });

  it("sha256Many is correct for equal-length runs around the padding boundaries", () => {
    // Equal lengths whose last block is padding only (len % 64 == 0 or >= 56)
    // take a precomputed-schedule path in the SIMD core; runs of different
    // lengths follow each other, and messages are subarrays of one buffer.
    const rnd = prng(9);
    const lens = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 184, 192, 64, 0, 64];
    const msgs: Uint8Array[] = [];
    for (const [k, len] of lens.entries()) {
      const count = 3 + (k % 7);
      const pool = rnd(len * count);
      for (let i = 0; i < count; i++) msgs.push(pool.subarray(i * len, (i + 1) * len));
    }
    const got = api.sha256Many(msgs);
    for (let i = 0; i < msgs.length; i++) expect(got[i], `message ${i} (${msgs[i]!.length} bytes)`).toBe(ref(msgs[i]!));
  });

  it.each([1, 3, 4, 5, 64])("sha256Many gives the same digests for separate buffers and subarrays (%i messages)", (count) => {
    // Separate buffers are how callers usually hold messages; the batch paths
    // copy them one by one, subarrays of one buffer as runs. Sizes around the
    // on-heap typed-array limit (64 B) and the WASM/node:crypto split.
    const rnd = prng(count);
    for (const size of [0, 1, 63, 64, 65, 192, 193, 256, 4096]) {
      const pool = rnd(size * count);
      const subarrays = Array.from({ length: count }, (_, i) => pool.subarray(i * size, (i + 1) * size));
      const separate = subarrays.map((m) => m.slice()); // fresh arrays: ≤ 64 B ones live on the JS heap
      const copied = subarrays.map((m) => new Uint8Array(m)); // own ArrayBuffer each
      const buffers = subarrays.map((m) => Buffer.from(m)); // Node Buffers (pooled, often adjacent in one pool)
      const want = subarrays.map((m) => api.sha256(m));
      for (let i = 0; i < count; i++) expect(want[i], `size ${size}`).toBe(ref(subarrays[i]!));
      expect(api.sha256Many(subarrays), `subarrays of ${size} B`).toEqual(want);
      expect(api.sha256Many(separate), `separate ${size} B`).toEqual(want);
      expect(api.sha256Many(copied), `copied ${size} B`).toEqual(want);
      expect(api.sha256Many(buffers), `Buffers ${size} B`).toEqual(want);
      // Interleaved: runs of subarrays broken by separate buffers and strings.
      const mixed = subarrays.map((m, i) => (i % 3 === 1 ? separate[i]! : i % 5 === 4 ? "s".repeat(size) : m));
      expect(api.sha256Many(mixed), `mixed ${size} B`).toEqual(mixed.map((m) => ref(m)));
    }
  });

  it("sha256Many does not join a message to the previous one from another buffer at the same offset", () => {
    // b starts (byteOffset 64) where a ends, but in a different ArrayBuffer.
    const rnd = prng(11);
    const bufA = rnd(256);
    const bufB = rnd(256);
    const msgs = [bufA.subarray(0, 64), bufB.subarray(64, 128), bufB.subarray(128, 192), bufA.subarray(192, 256), bufA.subarray(0, 64)];
    expect(api.sha256Many(msgs)).toEqual(msgs.map((m) => ref(m)));
    expect(api.sha256Many(msgs.map((m) => m.slice()))).toEqual(msgs.map((m) => ref(m)));
  });

  describe("ChainID (image-spec identity table)", () => {
    it.each(chainVectors.cases)("$name", ({ input, chainIds, chainId }) => {
      const ids = input === null ? null : input.map((i) => chainVectors.diffIds[i]!);
      expect(api.chainIds(ids)).toEqual(chainIds);
      expect(api.chainId(ids) ?? null).toBe(chainId);
      if (ids && ids.length > 0) expect(api.chainIdMany([ids])).toEqual([chainId]);
    });
  });

  it("chainIds/chainIdMany match the formula on node:crypto for many chains", () => {
    const rnd = prng(9);
    const chains: string[][] = [];
    for (let c = 0; c < 203; c++) {
      const len = 1 + ((c * 17) % 60);
      chains.push(Array.from({ length: len }, () => ref(rnd(8))));
    }
    const formula = (ids: string[]): string[] => {
      const out: string[] = [];
      for (const d of ids) out.push(out.length === 0 ? d : ref(`${out[out.length - 1]} ${d}`));
      return out;
    };
    const tops = api.chainIdMany(chains);
    for (let c = 0; c < chains.length; c++) {
      const want = formula(chains[c]!);
      expect(tops[c], `chain ${c}`).toBe(want[want.length - 1]);
      if (c % 20 === 0) expect(api.chainIds(chains[c]!)).toEqual(want);
    }
    // A valid DiffID of another algorithm takes the generic path.
    const odd = `sha512:${"ab".repeat(64)}`;
    const mixed = [chains[0]![0]!, odd];
    expect(api.chainIds(mixed)).toEqual(formula(mixed));
  });

  it("rejects malformed DiffIDs with the precise typed error", () => {
    const good = ref("a");
    const cases: [unknown, string][] = [
      ["sha256:xyz", "ERR_DIGEST_LENGTH"],
      [`sha256:${"A".repeat(64)}`, "ERR_DIGEST_FORMAT"],
      [`sha256:${"g".repeat(64)}`, "ERR_DIGEST_FORMAT"],
      [`md5:${"a".repeat(32)}`, "ERR_DIGEST_UNSUPPORTED"],
      [`sha256-${"a".repeat(64)}`, "ERR_DIGEST_FORMAT"],
      [`SHA256:${"a".repeat(64)}`, "ERR_DIGEST_FORMAT"],
      [`sha256:${"a".repeat(63)}é`, "ERR_DIGEST_FORMAT"],
      [12, "ERR_DIGEST_FORMAT"],
    ];
    for (const [bad, code] of cases) {
      for (const call of [
        () => api.chainIds([good, bad as string]),
        () => api.chainId([good, bad as string]),
        () => api.chainIdMany([[good], [good, good], [good, good, good], [good, bad as string]]),
      ]) {
        let caught: unknown;
        try {
          call();
        } catch (err) {
          caught = err;
        }
        expect(hasCode(caught, code), `${JSON.stringify(bad)} -> ${code} (${String(caught)})`).toBe(true);
      }
    }
    expect(() => api.chainIdMany([[good], []])).toThrow(RangeError);
  });

  it("digestStream over arrays, web streams and node streams", async () => {
    const rnd = prng(3);
    const parts = [rnd(1), rnd(63), rnd(100_000), rnd(0), rnd(5)];
    const all = Buffer.concat(parts);
    expect(await api.digestStream(parts)).toEqual({ digest: ref(all), size: all.length });
    const web = new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(p);
        c.close();
      },
    });
    expect((await api.digestStream(web)).digest).toBe(ref(all));
    const { Readable } = await import("node:stream");
    expect((await api.digestStream(Readable.from(parts))).digest).toBe(ref(all));
  });

  it(`backendName names the choice (${name})`, () => {
    for (const op of ["stream", "oneshot", "many", "chain"] as const) expect(api.backendName(op)).toMatch(/^[a-z+-]+$/);
  });
});

describe("the root export's choice", () => {
  it("uses node:crypto for streams and one-shots and WASM for batches on Node", () => {
    expect(auto.backendName("stream")).toBe("node");
    expect(auto.backendName("oneshot")).toBe("node");
    expect(auto.backendName("many")).toBe(wasm.wasmSimdSupported() ? "wasm+node" : "node");
    expect(auto.backendName("chain")).toBe(wasm.wasmSimdSupported() ? "wasm" : "node");
    expect(wasm.backendName()).toBe("wasm");
    expect(noble.backendName("many")).toBe("noble");
    expect(wasm.wasmUsesSimd()).toBe(wasm.wasmSimdSupported());
  });

  it("sends sha256Many to WASM only for ≥ 4 small messages that mostly follow each other in one buffer", () => {
    const pool = new Uint8Array(256 * 64);
    const sub = (size: number, count: number) => Array.from({ length: count }, (_, i) => pool.subarray(i * size, (i + 1) * size));
    expect(manyUsesWasm(sub(64, 64))).toBe(true);
    expect(manyUsesWasm(sub(192, 64))).toBe(true);
    expect(manyUsesWasm(sub(193, 64))).toBe(false); // average above MANY_WASM_MAX_AVG
    expect(manyUsesWasm(sub(64, 3))).toBe(false); // too few for a SIMD batch
    expect(manyUsesWasm([])).toBe(false);
    expect(manyUsesWasm(sub(64, 64).map((m) => m.slice()))).toBe(false); // separate buffers
    expect(manyUsesWasm(sub(64, 64).map((m) => new Uint8Array(m)))).toBe(false);
    expect(manyUsesWasm(["a", "b", "c", "d"])).toBe(true);
    // Runs (copies into WASM memory) at most half the messages: WASM; more: node:crypto.
    const four = sub(64, 8).map((m, i) => (i < 3 ? m.slice() : m)); // 3 separate + one run of 5
    expect(manyUsesWasm(four)).toBe(true);
    expect(manyUsesWasm(sub(64, 8).map((m, i) => (i < 4 ? m.slice() : m)))).toBe(false); // 5 runs of 8
    expect(manyUsesWasm(sub(64, 8).map((m, i) => (i % 2 === 1 ? m.slice() : m)))).toBe(false); // every message a run
    // Gaps between subarrays of one buffer count as separate.
    expect(manyUsesWasm(Array.from({ length: 8 }, (_, i) => pool.subarray(i * 128, i * 128 + 64)))).toBe(false);
    expect(MANY_WASM_MAX_AVG).toBe(192);
  });

  it("initWasm resolves and the API keeps working", async () => {
    await wasm.initWasm();
    expect(wasm.sha256("abc")).toBe(ref("abc"));
  });
});

const slow = process.env.BERTH_SLOW === "1";

describe.skipIf(!slow)("streams over 4 GiB (BERTH_SLOW=1)", () => {
  // A 64-bit length counter: 2^32 + 1000 bytes, fed in irregular chunks.
  const TOTAL = 2 ** 32 + 1000;
  const block = randomBytes(1 << 20);
  function* chunks(): Generator<Uint8Array> {
    let sent = 0;
    let k = 0;
    while (sent < TOTAL) {
      const len = Math.min(TOTAL - sent, k % 3 === 0 ? (1 << 20) - 1 : 1 << 20);
      yield block.subarray(0, len);
      sent += len;
      k++;
    }
  }
  const want = (() => {
    const h = createHash("sha256");
    for (const c of chunks()) h.update(c);
    return `sha256:${h.digest("hex")}`;
  })();
  it.each(backends)("%s", (_name, api) => {
    const h = api.sha256.create();
    for (const c of chunks()) h.update(c);
    expect(h.digest()).toBe(want as Digest);
  }, 900_000);
});
