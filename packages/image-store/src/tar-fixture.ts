// Test fixture without a test-runner dependency (used by the suites, tests, worker processes and the store benchmark; `@berth/image-store/tar-fixture`).

const enc = new TextEncoder();

/** A minimal ustar archive (regular files only) ending in two zero blocks, like dockerd writes. */
export function makeTar(files: Record<string, string | Uint8Array>, mtime = 0): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const [name, content] of Object.entries(files)) {
    const data = typeof content === "string" ? enc.encode(content) : content;
    const h = new Uint8Array(512);
    const put = (off: number, len: number, s: string) => h.set(enc.encode(s).subarray(0, len), off);
    const octal = (off: number, len: number, n: number) => put(off, len, `${n.toString(8).padStart(len - 1, "0")}\0`);
    put(0, 100, name);
    octal(100, 8, 0o644);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, data.length);
    octal(136, 12, mtime);
    put(148, 8, "        ");
    put(156, 1, "0");
    put(257, 6, "ustar\0");
    put(263, 2, "00");
    let sum = 0;
    for (const b of h) sum += b;
    put(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
    blocks.push(h);
    const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
    padded.set(data);
    blocks.push(padded);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}
