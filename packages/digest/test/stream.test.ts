import { describe, expect, it } from "vitest";
import { coalesceChunks } from "../src/index.js";

async function* from(sizes: number[]): AsyncGenerator<Uint8Array> {
  let n = 0;
  for (const size of sizes) yield Uint8Array.from({ length: size }, () => n++ & 0xff);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}

const joined = (chunks: Uint8Array[]) => Uint8Array.from(chunks.flatMap((c) => [...c]));

describe("coalesceChunks", () => {
  it("gathers small chunks into ones of at least min bytes, keeping every byte in order", async () => {
    const sizes = [3, 5, 1, 0, 7, 2, 9, 4];
    const out = await collect(coalesceChunks(from(sizes), 8));
    expect(out.map((c) => c.length)).toEqual([8, 8, 11, 4]);
    expect(joined(out)).toEqual(joined(await collect(from(sizes))));
  });

  it("passes a chunk that is already large enough as it is, and yields nothing for an empty source", async () => {
    const big = new Uint8Array(32).fill(7);
    const out = await collect(coalesceChunks((async function* () { yield big; })(), 8));
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(big);
    expect(await collect(coalesceChunks(from([]), 8))).toEqual([]);
    expect(await collect(coalesceChunks(from([0, 0]), 8))).toEqual([]);
  });

  it("passes a source's failure on, after the chunks before it", async () => {
    const failing = (async function* () {
      yield new Uint8Array(10);
      throw new Error("connection reset");
    })();
    const seen: number[] = [];
    await expect((async () => { for await (const c of coalesceChunks(failing, 4)) seen.push(c.length); })()).rejects.toThrow("connection reset");
    expect(seen).toEqual([10]);
  });
});
