// Runs in headless Chromium (bundled by test/browser.test.ts): the WASM
// backend and the root export's browser choice against data computed by
// node:crypto in the test process.
import * as auto from "../../src/index.js";
import * as wasm from "../../src/wasm.js";

interface Expected {
  vectors: { name: string; ascii: string; repeat?: number; digest: string }[];
  lengths: string[]; // digest of bytes (i * 31) & 255, i < n, for n = 0..lengths.length-1
  chains: string[][];
  chainTops: string[];
  gzipB64: string;
  gzipRaw: string;
  gzipBlob: string;
}

function fail(msg: string): never {
  throw new Error(msg);
}

async function run(e: Expected): Promise<Record<string, unknown>> {
  const checks: Record<string, unknown> = {};
  await wasm.initWasm();
  for (const v of e.vectors) {
    const text = v.repeat ? v.ascii.repeat(v.repeat) : v.ascii;
    const got = wasm.sha256(text);
    if (got !== `sha256:${v.digest}`) fail(`vector ${v.name}: ${got}`);
    const h = wasm.sha256.create();
    const bytes = new TextEncoder().encode(text);
    for (let i = 0; i < bytes.length; i += 1000) h.update(bytes.subarray(i, i + 1000));
    if (h.digest() !== `sha256:${v.digest}`) fail(`vector ${v.name} streamed`);
  }
  checks.vectors = e.vectors.length;
  const all = new Uint8Array(e.lengths.length).map((_, i) => (i * 31) & 255);
  const msgs: Uint8Array[] = [];
  for (let n = 0; n < e.lengths.length; n++) {
    msgs.push(all.subarray(0, n));
    if (wasm.sha256(all.subarray(0, n)) !== e.lengths[n]) fail(`length ${n}`);
  }
  const many = wasm.sha256Many(msgs);
  for (let n = 0; n < many.length; n++) if (many[n] !== e.lengths[n]) fail(`sha256Many ${n}`);
  checks.lengths = e.lengths.length;
  const tops = wasm.chainIdMany(e.chains);
  for (let i = 0; i < tops.length; i++) if (tops[i] !== e.chainTops[i]) fail(`chainIdMany ${i}`);
  if (auto.chainIdMany(e.chains).join() !== e.chainTops.join()) fail("auto chainIdMany");
  checks.chains = e.chains.length;
  const gz = Uint8Array.from(atob(e.gzipB64), (c) => c.charCodeAt(0));
  const ld = await auto.layerDigests([gz.subarray(0, 10), gz.subarray(10)]);
  if (ld.diffID !== e.gzipRaw || ld.digest !== e.gzipBlob || ld.compression !== "gzip") fail(`layerDigests ${JSON.stringify(ld)}`);
  checks.backend = { stream: auto.backendName("stream"), many: auto.backendName("many"), chain: auto.backendName("chain") };
  checks.simd = wasm.wasmUsesSimd();
  return checks;
}

const w = globalThis as unknown as { __expected: Expected; __done: Promise<Record<string, unknown>> };
w.__done = run(w.__expected);
