// Test fixtures without a test-runner dependency (used by the suites and by worker processes).

/** Deterministic pseudo-random bytes (never starting with gzip/zstd magic). */
export function randomBytesFor(seed: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761 + 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (x >>> 8) & 0x7f;
  }
  return out;
}

/** A zstd frame holding `data` in raw (stored) blocks: valid zstd without a compressor. */
export function zstdStored(data: Uint8Array): Uint8Array {
  const parts: number[] = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]; // magic; FHD (no FCS, no checksum); window 128 KiB
  const out: Uint8Array[] = [new Uint8Array(parts)];
  const max = 128 * 1024;
  let off = 0;
  do {
    const n = Math.min(max, data.length - off);
    const last = off + n >= data.length ? 1 : 0;
    const h = last | (0 << 1) | (n << 3);
    out.push(new Uint8Array([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]));
    out.push(data.subarray(off, off + n));
    off += n;
  } while (off < data.length);
  const total = out.reduce((a, b) => a + b.length, 0);
  const res = new Uint8Array(total);
  let p = 0;
  for (const o of out) {
    res.set(o, p);
    p += o.length;
  }
  return res;
}

/**
 * A valid ustar archive holding one regular file `f<seed>` of `size`
 * pseudo-random bytes (then the two end-of-archive blocks): layer content for
 * tests, deterministic per seed.
 */
export function tarFor(seed: number, size: number): Uint8Array {
  const pad = (size + 511) & ~511;
  const out = new Uint8Array(512 + pad + 1024);
  const put = (off: number, s: string) => {
    for (let i = 0; i < s.length; i++) out[off + i] = s.charCodeAt(i);
  };
  const octal = (off: number, width: number, n: number) => put(off, `${n.toString(8).padStart(width - 1, "0")}\0`);
  put(0, `f${seed}`);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 0);
  put(148, "        ");
  put(156, "0");
  put(257, "ustar\u000000");
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += out[i]!;
  put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  out.set(randomBytesFor(seed, size), 512);
  return out;
}
