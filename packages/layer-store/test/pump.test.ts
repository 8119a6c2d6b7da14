import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Socket, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryLayerStore, type LayerStore, openLayerStore, PUMP_CHUNK, pumpReader } from "../src/index.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function stores(): Promise<Array<[string, LayerStore]>> {
  const dir = await mkdtemp(join(tmpdir(), "berth-pump-"));
  dirs.push(dir);
  return [
    ["fs", await openLayerStore({ root: dir })],
    ["memory", createMemoryLayerStore()],
  ];
}

/** A unix-socket pair: what is written to `a` is collected from the other end. */
async function socketPair(dir: string): Promise<{ a: Socket; received: Promise<Buffer>; server: ReturnType<typeof createServer> }> {
  const path = join(dir, "s.sock");
  let resolve!: (b: Buffer) => void;
  const received = new Promise<Buffer>((r) => (resolve = r));
  const server = createServer((b) => {
    const parts: Buffer[] = [];
    b.on("data", (c: Buffer) => parts.push(c));
    b.on("end", () => resolve(Buffer.concat(parts)));
  });
  await new Promise<void>((r) => server.listen(path, r));
  const a = connect(path);
  await new Promise((r) => a.once("connect", r));
  return { a, received, server };
}

describe("pumpReader", () => {
  it("copies a blob through a socket intact while reusing its buffers (both stores)", async () => {
    const bytes = randomBytes(PUMP_CHUNK * 9 + 12345);
    for (const [name, s] of await stores()) {
      const { digest } = await s.content.put(bytes);
      const reader = await s.content.openReader(digest);
      expect(reader.size).toBe(bytes.length);
      const { a, received, server } = await socketPair(dirs[0]!);
      const n = await pumpReader(reader, a);
      a.end();
      expect(n, name).toBe(bytes.length);
      expect((await received).equals(bytes), name).toBe(true);
      await reader.close();
      await reader.close(); // idempotent
      server.close();
    }
  });

  it("gives a PassThrough a new buffer per chunk (its reader may hold them) and honours a range", async () => {
    const bytes = randomBytes(PUMP_CHUNK * 3 + 7);
    const s = (await stores())[0]![1];
    const { digest } = await s.content.put(bytes);
    const reader = await s.content.openReader(digest);
    const out = new PassThrough({ highWaterMark: 64 << 20 });
    const seen: number[] = [];
    const n = await pumpReader(reader, out, { start: 100, end: PUMP_CHUNK * 2 + 50, onChunk: (c) => seen.push(c.length) });
    out.end();
    const got: Buffer[] = [];
    for await (const c of out) got.push(c as Buffer);
    expect(n).toBe(PUMP_CHUNK * 2 - 50);
    expect(seen.reduce((x, y) => x + y, 0)).toBe(n);
    expect(Buffer.concat(got).equals(bytes.subarray(100, PUMP_CHUNK * 2 + 50))).toBe(true);
    await reader.close();
  });

  it("fails with ERR_OUTPUT_CLOSED when the output closes, and with the reason on abort", async () => {
    const bytes = randomBytes(PUMP_CHUNK * 8);
    const s = (await stores())[0]![1];
    const { digest } = await s.content.put(bytes);
    const reader = await s.content.openReader(digest);
    // a Writable that never calls back: the pump waits on drain until it closes
    const stuck = new Writable({ highWaterMark: 1, write() {} });
    setTimeout(() => stuck.destroy(), 20);
    await expect(pumpReader(reader, stuck)).rejects.toMatchObject({ code: "ERR_OUTPUT_CLOSED" });
    const ac = new AbortController();
    const stuck2 = new Writable({ highWaterMark: 1, write() {} });
    setTimeout(() => ac.abort(new Error("stop")), 20);
    await expect(pumpReader(reader, stuck2, { signal: ac.signal })).rejects.toThrow("stop");
    await reader.close();
  });

  it("fails with ERR_BLOB_TRUNCATED when the blob is shorter than the range", async () => {
    const s = (await stores())[0]![1];
    const { digest } = await s.content.put(randomBytes(1000));
    const reader = await s.content.openReader(digest);
    await expect(pumpReader(reader, new PassThrough(), { end: 2000 })).rejects.toMatchObject({ code: "ERR_BLOB_TRUNCATED", details: { offset: 1000 } });
    await reader.close();
  });

  it("openReader of a blob that is not stored is ERR_BLOB_NOT_FOUND", async () => {
    for (const [name, s] of await stores()) {
      await expect(s.content.openReader(`sha256:${"0".repeat(64)}`), name).rejects.toMatchObject({ code: "ERR_BLOB_NOT_FOUND" });
    }
  });
});
