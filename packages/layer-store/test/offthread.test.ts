import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { link, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ContentIngester, createMemoryLayerStore, type LayerStore, openLayerStore, openOffThreadWriter } from "../src/index.js";
import { tarFor, zstdStored } from "../src/fixtures.js";
import { workerExecArgv } from "../src/threads.js";
import { gz, tempRoot } from "./helpers.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function tempDir(): Promise<string> {
  const { root, cleanup } = await tempRoot("berth-offthread-");
  cleanups.push(cleanup);
  return root;
}

async function stores(): Promise<Array<[string, LayerStore, string | undefined]>> {
  const dir = await tempDir();
  return [
    ["fs", await openLayerStore({ root: dir }), dir],
    ["memory", createMemoryLayerStore(), undefined],
  ];
}

const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describe("openOffThreadWriter", () => {
  it("stores what was written, in pieces of any size, with the chunks' memory reused at once", async () => {
    for (const [kind, store, dir] of await stores()) {
      // 3 MiB and an odd tail: pieces fill across chunk boundaries, the last one partly
      const data = randomBytes(3 * (1 << 20) + 12_345);
      const w = await openOffThreadWriter(store.content);
      const chunk = new Uint8Array(65_537);
      for (let off = 0; off < data.length; off += chunk.length) {
        const n = Math.min(chunk.length, data.length - off);
        chunk.set(data.subarray(off, off + n));
        await w.write(chunk.subarray(0, n));
        chunk.fill(0xee); // the writer copied it: scribbling on it changes nothing stored
      }
      await w.flush();
      expect(w.written, kind).toBe(data.length);
      // what was written, known before it is visible
      expect(await w.finish(), kind).toEqual({ digest: sha(data), size: data.length });
      expect(await store.content.has(sha(data)), kind).toBe(false);
      const c = await w.commit(data.length, sha(data));
      expect(c, kind).toMatchObject({ digest: sha(data), size: data.length, existed: false });
      expect(Buffer.compare(await collect(await store.content.open(c.digest)), data), kind).toBe(0);
      if (dir) expect(await readdir(join(dir, "ingest")), kind).toEqual([]);
    }
  });

  it("refuses a digest or size other than promised, keeping nothing", async () => {
    for (const [kind, store, dir] of await stores()) {
      const data = randomBytes(1_500_000);
      const bad = await openOffThreadWriter(store.content);
      await bad.write(data);
      await expect(bad.commit(undefined, sha(Buffer.from("other"))), kind).rejects.toMatchObject({ code: "ERR_DIGEST_MISMATCH" });
      const short = await openOffThreadWriter(store.content);
      await short.write(data);
      await expect(short.commit(data.length + 1), kind).rejects.toMatchObject({ code: "ERR_SIZE_MISMATCH" });
      expect(await store.content.has(sha(data)), kind).toBe(false);
      await expect(short.write(data), kind).rejects.toMatchObject({ code: "ERR_INGEST_CLOSED" });
      if (dir) expect(await readdir(join(dir, "ingest")), kind).toEqual([]);
    }
  });

  it("aborts, and serves many writers at once", async () => {
    for (const [kind, store, dir] of await stores()) {
      const dropped = await openOffThreadWriter(store.content);
      await dropped.write(randomBytes(2 << 20));
      await dropped.abort();
      const blobs = Array.from({ length: 8 }, (_, i) => randomBytes((1 << 20) + i * 70_001));
      const results = await Promise.all(
        blobs.map(async (b) => {
          const w = await openOffThreadWriter(store.content);
          for (let off = 0; off < b.length; off += 100_000) await w.write(b.subarray(off, off + 100_000));
          return w.commit(b.length);
        }),
      );
      expect(
        results.map((r) => r.digest),
        kind,
      ).toEqual(blobs.map(sha));
      if (dir) expect(await readdir(join(dir, "ingest")), kind).toEqual([]);
    }
  });

  it("an abort ends a write that waits for the worker", async () => {
    const [, store] = (await stores())[0]!;
    const w = await openOffThreadWriter(store.content);
    // more than the pieces in flight: this write waits for the worker
    const writing = expect(w.write(randomBytes(12 << 20))).rejects.toMatchObject({ code: "ERR_INGEST_CLOSED" });
    await w.abort();
    await writing;
    await expect(w.flush()).rejects.toMatchObject({ code: "ERR_INGEST_CLOSED" });
  });

  it("reports the worker's failed write with its system error code", async () => {
    const dir = await tempDir();
    let aborted = false;
    // a content store whose ingest file cannot be opened by the worker
    const content = {
      fileWriter: async () => ({
        path: join(dir, "no-such-dir", "ingest"),
        commit: async () => {
          throw new Error("not reached");
        },
        abort: async () => {
          aborted = true;
        },
      }),
    } as unknown as ContentIngester;
    const w = await openOffThreadWriter(content);
    await w.write(randomBytes(3 << 20));
    await expect(w.flush()).rejects.toMatchObject({ code: "ENOENT", syscall: "open" });
    await expect(w.write(new Uint8Array(1))).rejects.toMatchObject({ code: "ENOENT" });
    await w.abort();
    expect(aborted).toBe(true);
  });

  it("does not keep the process running once its writers are done", async () => {
    const dir = await tempDir();
    // the built package, as a program using it runs it
    const script = `
      import { openLayerStore, openOffThreadWriter } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)};
      const store = await openLayerStore({ root: ${JSON.stringify(join(dir, "store"))} });
      const w = await openOffThreadWriter(store.content);
      await w.write(new Uint8Array(3 << 20).fill(7));
      console.log((await w.commit()).digest);
    `;
    await writeFile(join(dir, "main.mjs"), script);
    const out = execFileSync(process.execPath, [join(dir, "main.mjs")], { encoding: "utf8", timeout: 30_000 });
    expect(out.trim()).toBe(sha(new Uint8Array(3 << 20).fill(7)));
  });
});

describe("workerExecArgv", () => {
  it("keeps the parent's flags but its conditions and a program given as text", () => {
    expect(workerExecArgv(["--conditions=source", "--max-old-space-size=512", "-C", "dev", "--input-type=module", "-e", "code", "--trace-gc"])).toEqual([
      "--max-old-space-size=512",
      "--trace-gc",
    ]);
    expect(workerExecArgv(["--input-type", "module", "--print", "1 + 1", "--enable-source-maps"])).toEqual(["--enable-source-maps"]);
  });

  it("startWorker leaves out the flags only a process takes (V8's, --title) and keeps the others", () => {
    const threads = new URL("../dist/threads.js", import.meta.url).href;
    const script = `const { startWorker } = await import(${JSON.stringify(threads)});
      const w = startWorker(new URL("data:text/javascript,import { parentPort } from 'node:worker_threads'; parentPort.postMessage(process.execArgv)"));
      w.once("message", (argv) => { console.log(JSON.stringify(argv)); w.terminate(); });`;
    const flags = ["--max-old-space-size=300", "--expose-gc", "--title=berth-test", "--no-warnings"];
    const out = execFileSync(process.execPath, [...flags, "--input-type=module", "-e", script], { timeout: 20_000, encoding: "utf8" });
    expect(JSON.parse(out)).toEqual(["--no-warnings"]);
  });
});

describe("ingestLayer with offThread", () => {
  /** A source in chunks of `size` bytes. */
  async function* chunks(b: Uint8Array, size = 300_000): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
  }

  it("learns what the calling thread's ingest learns, for tar, gzip and zstd blobs", async () => {
    const tar = tarFor(7, 5 << 20);
    for (const [kind, blob] of [
      ["tar", tar],
      ["gzip", gz(tar)],
      ["zstd", zstdStored(tar)],
    ] as const) {
      const [, here] = (await stores())[0]!;
      const [, there] = (await stores())[0]!;
      const a = await here.ingestLayer(chunks(blob), { expectedDiffID: sha(tar) });
      const b = await there.ingestLayer(chunks(blob), { expectedDiffID: sha(tar), expectedDigest: sha(blob), expectedSize: blob.length, offThread: true });
      expect(b, kind).toEqual(a);
      expect(b, kind).toMatchObject({ diffID: sha(tar), blob: { digest: sha(blob), size: blob.length } });
      expect(Buffer.compare(await collect(await there.content.open(b.blob.digest)), blob), kind).toBe(0);
    }
  });

  it("refuses what the calling thread's ingest refuses, with the same codes, keeping nothing", async () => {
    const tar = tarFor(8, 3 << 20);
    const zipped = gz(tar);
    const corrupt = Buffer.from(zipped);
    corrupt.fill(0x55, 100_000, 100_400);
    const [, store, dir] = (await stores())[0]!;
    const cases: Array<[string, Uint8Array, Record<string, unknown>, string]> = [
      ["DiffID", zipped, { expectedDiffID: sha(new Uint8Array(1)) }, "ERR_DIGEST_MISMATCH"],
      ["digest", zipped, { expectedDigest: sha(tar) }, "ERR_DIGEST_MISMATCH"],
      ["corrupt gzip", corrupt, {}, "ERR_CORRUPT_DATA"],
      ["not a tar", gz(randomBytes(2 << 20)), {}, "ERR_INVALID_TAR"],
      ["too large", zipped, { maxUncompressedSize: 1 << 20 }, "ERR_DECOMPRESSION_LIMIT"],
    ];
    for (const [what, blob, opts, code] of cases) {
      await expect(store.ingestLayer(chunks(blob), { ...opts, offThread: true }), what).rejects.toMatchObject({ code });
      expect(await store.content.has(sha(blob)), what).toBe(false);
    }
    expect(await readdir(join(dir!, "ingest"))).toEqual([]);
  });

  it("names its file before the first byte (onIngestFile): a link to it holds the blob, or a prefix of it once an ingest stopped", async () => {
    const tar = tarFor(10, 6 << 20);
    const blob = gz(tar);
    const [, store, dir] = (await stores())[0]!;
    const kept = join(dir!, "kept");
    const seen: number[] = [];
    const r = await store.ingestLayer(chunks(blob), {
      offThread: true,
      onIngestFile: async (path) => {
        seen.push((await stat(path)).size);
        await link(path, kept);
      },
    });
    expect(seen).toEqual([0]);
    expect(r.blob.digest).toBe(sha(blob));
    expect(Buffer.compare(await readFile(kept), blob)).toBe(0);
    await rm(kept);

    // stopped half-way: once the ingest has failed, the link holds a prefix that grows no more
    async function* half(): AsyncGenerator<Uint8Array> {
      let n = 0;
      for await (const c of chunks(tar, 256 << 10)) {
        yield c;
        n += c.length;
        if (n > tar.length / 2) throw new Error("test: the source broke");
      }
    }
    await expect(store.ingestLayer(half(), { offThread: true, onIngestFile: (path) => link(path, kept) })).rejects.toThrow("the source broke");
    const left = await readFile(kept);
    expect(left.length).toBeGreaterThan(0);
    expect(left.length).toBeLessThan(tar.length);
    expect(Buffer.compare(left, tar.subarray(0, left.length))).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect((await stat(kept)).size).toBe(left.length);
    expect(await readdir(join(dir!, "ingest"))).toEqual([]);
  });

  it("is the calling thread's ingest on the memory store", async () => {
    const tar = tarFor(9, 1 << 20);
    const [, memory] = (await stores())[1]!;
    expect(await memory.ingestLayer(chunks(gz(tar)), { offThread: true })).toMatchObject({ diffID: sha(tar), compression: "gzip" });
  });
});
