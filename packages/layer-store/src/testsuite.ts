/**
 * Conformance suites for {@link ContentStore} and {@link LayerStore}
 * implementations (containerd's `content/testsuite` idea). Every
 * implementation runs the same suite:
 *
 * ```ts
 * import { describe, expect, it } from "vitest"; // or jest's globals
 * import { contentStoreSuite, layerStoreSuite } from "@berth/layer-store/testsuite";
 * layerStoreSuite("memory", async () => ({ store: createMemoryLayerStore() }), { describe, it, expect });
 * ```
 *
 * The suites take the test runner's `describe`, `it` and `expect` as an
 * argument ({@link TestApi}): this entry point imports no test runner, so it
 * works beside any version of vitest or jest. Also the stream fixtures of
 * `stream-fixtures.ts` (a child process that has exited, a socket whose peer
 * sent everything) for tests of APIs that take a stream.
 * @module
 */
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { BerthError, chainId, type Digest, sha256 } from "@berth/digest";
import { randomBytesFor, tarFor, zstdStored } from "./fixtures.js";
import type { ContentStore, Layer, LayerStore, Lease } from "./types.js";

export { randomBytesFor, tarFor, zstdStored };
export { exitedChildStdout, socketStream } from "./stream-fixtures.js";

/**
 * The test runner's functions the suites are written with, passed in so this
 * entry point imports no test runner: vitest's and jest's `describe`, `it` and
 * `expect` fit as they are (`import { describe, expect, it } from "vitest"`).
 * Only the matchers in {@link SuiteMatchers} are used.
 */
export interface TestApi {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>, timeout?: number): void;
  expect(actual: unknown): SuiteMatchers;
}

/** The `expect(…)` matchers the suites use (a subset of vitest's and jest's). */
export interface SuiteMatchers {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toContain(item: unknown): void;
  // biome-ignore lint/suspicious/noExplicitAny: a class of any constructor signature
  toBeInstanceOf(expected: abstract new (...args: any[]) => unknown): void;
  toBeLessThan(expected: number | bigint): void;
  toBeGreaterThan(expected: number | bigint): void;
  toBeGreaterThanOrEqual(expected: number | bigint): void;
  toMatchObject(expected: object): void;
  toHaveLength(length: number): void;
  toBeUndefined(): void;
  not: SuiteMatchers;
  rejects: { toThrow(expected?: string | RegExp): Promise<void> };
}

/** What a suite's factory returns: the store, how to reopen it (persistent stores), and cleanup. */
export interface SuiteFixture<S> {
  store: S;
  /** Open the same store anew (persistent implementations); the suite then checks everything survived. */
  reopen?: () => Promise<S>;
  /** Make a lease that protects content (when the store under test has one). */
  lease?: () => Promise<Lease>;
  cleanup?: () => Promise<void>;
}

const BAD_DIGESTS = [
  "../../etc/passwd",
  "sha256:../../../etc/passwd",
  "sha256/../../x",
  `sha256:${"A".repeat(64)}`,
  `sha256:${"a".repeat(63)}`,
  `sha256:${"a".repeat(64)}/..`,
  `md5:${"a".repeat(32)}`,
  `sha512:${"a".repeat(128)}`,
  "",
];

async function expectCode(p: Promise<unknown>, codes: string | string[]): Promise<BerthError> {
  const list = Array.isArray(codes) ? codes : [codes];
  try {
    await p;
  } catch (err) {
    if (!(err instanceof BerthError)) throw new Error(`expected a BerthError with code ${list.join(" or ")}, got ${String(err)}`, { cause: err });
    if (!list.includes(err.code)) throw new Error(`expected code ${list.join(" or ")}, got ${err.code}: ${err.message}`, { cause: err });
    return err;
  }
  throw new Error(`expected an error with code ${list.join(" or ")}, got success`);
}

const DIGEST_CODES = ["ERR_DIGEST_FORMAT", "ERR_DIGEST_LENGTH", "ERR_DIGEST_UNSUPPORTED"];

async function readAll(r: Readable): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Uint8Array));
  return new Uint8Array(Buffer.concat(chunks));
}

async function listDigests(c: ContentStore): Promise<string[]> {
  const out: string[] = [];
  for await (const b of c.list()) out.push(b.digest);
  return out.sort();
}

/** The ContentStore conformance suite. */
export function contentStoreSuite(name: string, make: () => Promise<SuiteFixture<ContentStore>>, t: TestApi): void {
  const { describe, it, expect } = t;
  describe(`ContentStore conformance: ${name}`, () => {
    const withStore = (fn: (s: ContentStore, f: SuiteFixture<ContentStore>) => Promise<void>) => async () => {
      const f = await make();
      try {
        await fn(f.store, f);
      } finally {
        await f.cleanup?.();
      }
    };

    it(
      "put, info, has, open, readBytes, list round-trip",
      withStore(async (s) => {
        const data = randomBytesFor(1, 5000);
        const d = sha256(data);
        const r = await s.put(data);
        expect(r).toEqual({ digest: d, size: 5000, existed: false });
        expect(await s.has(d)).toBe(true);
        expect(await s.info(d)).toEqual({ digest: d, size: 5000 });
        expect(sha256(await readAll(await s.open(d)))).toBe(d);
        expect(await s.readBytes(d, 5000)).toEqual(data);
        expect(await listDigests(s)).toEqual([d]);
        expect(await s.put(data, { digest: d, size: 5000 })).toEqual({ digest: d, size: 5000, existed: true });
      }),
    );

    it(
      "writer hashes while writing; commit verifies; an existing blob is success",
      withStore(async (s) => {
        const data = randomBytesFor(2, 70_000);
        const d = sha256(data);
        const w = await s.writer();
        for (let i = 0; i < data.length; i += 4096) await w.write(data.subarray(i, i + 4096));
        expect(w.written).toBe(data.length);
        expect(await w.commit(data.length, d)).toEqual({ digest: d, size: data.length, existed: false });
        const w2 = await s.writer();
        await w2.write(data);
        expect(await w2.commit()).toEqual({ digest: d, size: data.length, existed: true });
        await expectCode(w2.write(data), "ERR_INGEST_CLOSED");
        expect(await listDigests(s)).toEqual([d]);
      }),
    );

    it(
      "writes queued without waiting for each other land in order",
      withStore(async (s) => {
        const data = randomBytesFor(12, 3 << 20);
        const w = await s.writer();
        const parts: Promise<void>[] = [];
        for (let i = 0; i < data.length; i += 100_000) parts.push(w.write(data.subarray(i, i + 100_000)));
        await Promise.all(parts);
        expect(await w.commit(data.length, sha256(data))).toMatchObject({ digest: sha256(data), size: data.length });
        expect(sha256(await readAll(await s.open(sha256(data))))).toBe(sha256(data));
      }),
    );

    it(
      "digest and size mismatches are typed errors and leave nothing visible",
      withStore(async (s) => {
        const data = randomBytesFor(3, 1000);
        const other = sha256(randomBytesFor(4, 10));
        const w = await s.writer();
        await w.write(data);
        await expectCode(w.commit(undefined, other), "ERR_DIGEST_MISMATCH");
        const w2 = await s.writer();
        await w2.write(data);
        await expectCode(w2.commit(999), "ERR_SIZE_MISMATCH");
        await expectCode(s.put(data, { digest: other }), "ERR_DIGEST_MISMATCH");
        await expectCode(s.put(data, { size: 1 }), "ERR_SIZE_MISMATCH");
        expect(await s.has(sha256(data))).toBe(false);
        expect(await s.has(other)).toBe(false);
        expect(await listDigests(s)).toEqual([]);
      }),
    );

    it(
      "abort leaves nothing",
      withStore(async (s) => {
        const w = await s.writer();
        await w.write(randomBytesFor(5, 100));
        await w.abort();
        await w.abort();
        expect(await listDigests(s)).toEqual([]);
      }),
    );

    it(
      "two writers of the same content both succeed, one blob remains",
      withStore(async (s) => {
        const data = randomBytesFor(6, 20_000);
        const [a, b] = await Promise.all([s.writer(), s.writer()]);
        await Promise.all([a.write(data), b.write(data)]);
        const res = await Promise.all([a.commit(data.length, sha256(data)), b.commit(data.length, sha256(data))]);
        expect(res.map((r) => r.digest)).toEqual([sha256(data), sha256(data)]);
        expect(res.filter((r) => !r.existed)).toHaveLength(1);
        expect(await listDigests(s)).toEqual([sha256(data)]);
      }),
    );

    it(
      "missing blobs and size limits are typed errors",
      withStore(async (s) => {
        const d = sha256("nothing here");
        await expectCode(s.info(d), "ERR_BLOB_NOT_FOUND");
        await expectCode(s.open(d), "ERR_BLOB_NOT_FOUND");
        await expectCode(s.readBytes(d, 10), "ERR_BLOB_NOT_FOUND");
        expect(await s.has(d)).toBe(false);
        const r = await s.put(randomBytesFor(7, 100));
        await expectCode(s.readBytes(r.digest, 99), "ERR_BLOB_TOO_LARGE");
      }),
    );

    it(
      "malformed or path-like digests are refused before anything happens",
      withStore(async (s) => {
        const data = randomBytesFor(8, 10);
        for (const bad of BAD_DIGESTS) {
          await expectCode(s.info(bad), DIGEST_CODES);
          await expectCode(s.has(bad), DIGEST_CODES);
          await expectCode(s.open(bad), DIGEST_CODES);
          await expectCode(s.readBytes(bad, 10), DIGEST_CODES);
          await expectCode(s.put(data, { digest: bad }), DIGEST_CODES);
          const w = await s.writer();
          await w.write(data);
          await expectCode(w.commit(undefined, bad), DIGEST_CODES);
        }
        expect(await listDigests(s)).toEqual([]);
      }),
    );

    it(
      "persists across reopen",
      withStore(async (s, f) => {
        if (!f.reopen) return;
        const data = randomBytesFor(9, 300);
        const r = await s.put(data);
        const s2 = await f.reopen();
        expect(await s2.readBytes(r.digest, 1000)).toEqual(data);
      }),
    );
  });
}

/** The LayerStore conformance suite. */
export function layerStoreSuite(name: string, make: () => Promise<SuiteFixture<LayerStore>>, t: TestApi): void {
  const { describe, it, expect } = t;
  describe(`LayerStore conformance: ${name}`, () => {
    const withStore = (fn: (s: LayerStore, f: SuiteFixture<LayerStore>) => Promise<void>) => async () => {
      const f = await make();
      try {
        await fn(f.store, f);
      } finally {
        await f.cleanup?.();
      }
    };
    const tar = (seed: number, size = 3000) => tarFor(seed, size);

    it(
      "two phases: ingestLayer stores the blob and returns its facts; recordLayer records the layer on a parent (as register does)",
      withStore(async (s) => {
        const lease = await s.lease();
        const base = await s.register([tar(20)], null, { holder: "image:base" });
        const t = tar(21);
        const g = gzipSync(t);
        const facts = await s.ingestLayer([g], { lease, expectedDiffID: sha256(t), expectedSize: g.length });
        expect(facts).toEqual({
          blob: { digest: sha256(g), size: g.length, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" },
          compression: "gzip",
          diffID: sha256(t),
          uncompressedSize: t.length,
          contentSize: 3000,
        });
        // stored and leased, not a layer yet; a GC keeps it
        expect(await s.content.has(facts.blob.digest)).toBe(true);
        expect((await s.list()).map((l) => l.chainID)).toEqual([base.chainID]);
        await s.gc();
        expect(await s.content.has(facts.blob.digest)).toBe(true);
        const l = await s.recordLayer(facts, base.chainID, { holder: "image:two-phase" });
        expect(l).toMatchObject({ chainID: chainId([base.diffID, sha256(t)]), parent: base.chainID, size: t.length, contentSize: 3000, blob: facts.blob, existed: false });
        // the same layer through register: the same record, existed
        const again = await s.register([g], base.chainID);
        expect({ ...again, existed: false }).toEqual(l);
        expect(again.existed).toBe(true);
        await lease.release();
        await s.gc();
        expect(await s.has(l.chainID)).toBe(true);
        // an uncompressed blob's DiffID is its digest
        const plain = await s.ingestLayer([tar(22)], { lease: await s.lease() });
        expect([plain.compression, plain.diffID, plain.blob.digest]).toEqual(["none", sha256(tar(22)), sha256(tar(22))]);
      }),
    );

    it(
      "ingestLayer of a blob the store holds scans the stored copy: the source is released, the lease protects the blob, expectations still checked",
      withStore(async (s) => {
        const t = tar(28);
        const g = gzipSync(t);
        // a blob that is content, not a layer (what a registry upload leaves)
        await s.content.put(g);
        // the claim asks a source for its first chunk at once (see source.ts); no more is read
        let pulled = 0;
        const source = (async function* () {
          for (;;) {
            pulled++;
            yield new Uint8Array(1024); // not the blob: the stored copy is what counts
          }
        })();
        const lease = await s.lease();
        const facts = await s.ingestLayer(source, { lease, expectedDigest: sha256(g), expectedSize: g.length, expectedDiffID: sha256(t) });
        expect(pulled <= 1).toBe(true);
        await s.gc(); // the lease holds the blob now
        expect(await s.content.has(sha256(g))).toBe(true);
        expect(facts).toMatchObject({ blob: { digest: sha256(g), size: g.length }, compression: "gzip", diffID: sha256(t), uncompressedSize: t.length, contentSize: 3000 });
        expect((await s.recordLayer(facts, null, { lease })).chainID).toBe(sha256(t));
        await expectCode(s.ingestLayer([g], { expectedDigest: sha256(g), expectedSize: g.length + 1 }), "ERR_SIZE_MISMATCH");
        await expectCode(s.ingestLayer([g], { expectedDigest: sha256(g), expectedDiffID: sha256("other") }), "ERR_DIGEST_MISMATCH");
        // a stored blob that is not a tar does not become a layer either
        const junk = randomBytesFor(29, 5000);
        await s.content.put(junk);
        await expectCode(s.ingestLayer([junk], { expectedDigest: sha256(junk) }), "ERR_INVALID_TAR");
        await lease.release();
      }),
    );

    it(
      "ingestLayer refuses what is not a tar and a wrong DiffID, leaving nothing stored",
      withStore(async (s) => {
        const before = await listDigests(s.content);
        await expectCode(s.ingestLayer([randomBytesFor(23, 5000)]), "ERR_INVALID_TAR");
        await expectCode(s.ingestLayer([gzipSync(randomBytesFor(24, 5000))]), "ERR_INVALID_TAR");
        await expectCode(s.ingestLayer([gzipSync(tar(25))], { expectedDiffID: sha256("other") }), "ERR_DIGEST_MISMATCH");
        await expectCode(s.ingestLayer([tar(26)], { expectedDiffID: sha256("other") }), "ERR_DIGEST_MISMATCH");
        // uncompressed, with the right blob digest: the DiffID is still checked
        await expectCode(s.ingestLayer([tar(26)], { expectedDigest: sha256(tar(26)), expectedDiffID: sha256("other") }), "ERR_DIGEST_MISMATCH");
        await expectCode(s.ingestLayer([gzipSync(tar(27))], { maxUncompressedSize: 100 }), "ERR_DECOMPRESSION_LIMIT");
        expect(await listDigests(s.content)).toEqual(before);
        await expectCode(s.recordLayer({ blob: { mediaType: "", digest: sha256("absent"), size: 1 }, compression: "none", diffID: sha256("absent"), uncompressedSize: 1, contentSize: 0 }), "ERR_BLOB_NOT_FOUND");
      }),
    );

    it(
      "registers plain, gzip and zstd blobs with DiffID, ChainID, size, content size and media type",
      withStore(async (s) => {
        const plain = tar(1);
        const a = await s.register([plain]);
        expect(a).toMatchObject({
          chainID: sha256(plain),
          diffID: sha256(plain),
          parent: null,
          size: plain.length,
          contentSize: 3000, // the file's bytes, as dockerd counts a layer
          existed: false,
          blob: { digest: sha256(plain), size: plain.length, mediaType: "application/vnd.oci.image.layer.v1.tar" },
        });
        const t2 = tar(2);
        const g = gzipSync(t2);
        const b = await s.register(Readable.from([g]), a.chainID);
        expect(b.diffID).toBe(sha256(t2));
        expect(b.chainID).toBe(chainId([a.diffID, b.diffID]));
        expect(b.parent).toBe(a.chainID);
        expect(b.size).toBe(t2.length);
        expect(b.contentSize).toBe(3000);
        expect(b.blob).toEqual({ digest: sha256(g), size: g.length, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" });
        const t3 = tar(3, 300_000);
        const z = zstdStored(t3);
        const web = new ReadableStream<Uint8Array>({
          start(c) {
            for (let i = 0; i < z.length; i += 10_000) c.enqueue(z.slice(i, i + 10_000));
            c.close();
          },
        });
        const c = await s.register(web, b.chainID);
        expect(c.diffID).toBe(sha256(t3));
        expect(c.chainID).toBe(chainId([a.diffID, b.diffID, c.diffID]));
        expect(c.blob.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
        expect(await s.get(c.chainID)).toEqual({
          chainID: c.chainID,
          diffID: c.diffID,
          parent: b.chainID,
          size: t3.length,
          contentSize: 300_000,
          blob: c.blob,
        });
        expect(sha256(await readAll(await s.openUncompressed(c.chainID)))).toBe(sha256(t3));
        expect(sha256(await readAll(await s.openUncompressed(b.chainID)))).toBe(sha256(t2));
        expect(sha256(await readAll(await s.openUncompressed(a.chainID)))).toBe(sha256(plain));
        expect(sha256(await readAll(await s.open(b.chainID)))).toBe(sha256(g));
        expect((await s.list()).map((l) => l.chainID)).toEqual([a.chainID, b.chainID, c.chainID].sort());
        expect(await s.has(c.chainID)).toBe(true);
      }),
    );

    it(
      "the same content registered again is the same layer, no second copy",
      withStore(async (s) => {
        const t = gzipSync(tar(4));
        const a = await s.register([t]);
        const b = await s.register([t]);
        expect(b).toEqual({ ...a, existed: true });
        expect(await listDigests(s.content)).toEqual([a.blob.digest]);
      }),
    );

    it(
      "the same DiffID from a different blob keeps the first blob for the layer",
      withStore(async (s) => {
        const t = tar(5);
        const a = await s.register([t]);
        const b = await s.register([gzipSync(t)]);
        expect(b.existed).toBe(true);
        expect(b.blob).toEqual(a.blob);
        await s.acquire(a.chainID, "h");
        const r = await s.gc();
        expect(r.removedBlobs).toEqual([sha256(gzipSync(t))]);
        expect(await listDigests(s.content)).toEqual([a.blob.digest]);
      }),
    );

    it(
      "expected DiffID, digest and size are verified; a mismatch leaves nothing",
      withStore(async (s) => {
        const t = tar(6);
        const g = gzipSync(t);
        const wrong = sha256("wrong");
        await expectCode(s.register([g], null, { expectedDiffID: wrong }), "ERR_DIGEST_MISMATCH");
        await expectCode(s.register([g], null, { expectedDigest: wrong }), "ERR_DIGEST_MISMATCH");
        await expectCode(s.register([g], null, { expectedSize: 1 }), "ERR_SIZE_MISMATCH");
        expect(await s.list()).toEqual([]);
        expect(await listDigests(s.content)).toEqual([]);
        const ok = await s.register([g], null, { expectedDiffID: sha256(t), expectedDigest: sha256(g), expectedSize: g.length });
        expect(ok.diffID).toBe(sha256(t));
      }),
    );

    it(
      "a missing parent, corrupt data and decompression bombs are typed errors; store unchanged",
      withStore(async (s) => {
        const missing = sha256("no such layer");
        await expectCode(s.register([tar(7)], missing), "ERR_LAYER_NOT_FOUND");
        const g = gzipSync(tar(8, 100_000));
        await expectCode(s.register([g], null, { maxUncompressedSize: 50_000 }), "ERR_DECOMPRESSION_LIMIT");
        const broken = g.slice(0, g.length - 20);
        await expectCode(s.register([broken]), "ERR_CORRUPT_DATA");
        async function* failing() {
          yield tar(9, 100);
          throw new Error("source failed");
        }
        await expect(s.register(failing())).rejects.toThrow("source failed");
        expect(await s.list()).toEqual([]);
        expect(await listDigests(s.content)).toEqual([]);
      }),
    );

    it(
      "malformed or path-like digests are refused everywhere",
      withStore(async (s) => {
        const good = await s.register([tar(10)]);
        const before = await s.list();
        for (const bad of BAD_DIGESTS) {
          await expectCode(s.get(bad), DIGEST_CODES);
          await expectCode(s.has(bad), DIGEST_CODES);
          await expectCode(s.acquire(bad, "h"), DIGEST_CODES);
          await expectCode(s.release(bad, "h"), DIGEST_CODES);
          await expectCode(s.open(bad), DIGEST_CODES);
          await expectCode(s.openUncompressed(bad), DIGEST_CODES);
          await expectCode(s.register([tar(11)], bad), DIGEST_CODES);
          await expectCode(s.register([tar(11)], null, { expectedDiffID: bad }), DIGEST_CODES);
          await expectCode(s.gc({ keepBlobs: [bad] }), DIGEST_CODES);
        }
        expect(await s.list()).toEqual(before);
        expect(await listDigests(s.content)).toEqual([good.blob.digest]);
        await expectCode(s.get(sha256("unknown")), "ERR_LAYER_NOT_FOUND");
        await expectCode(s.acquire(sha256("unknown"), "h"), "ERR_LAYER_NOT_FOUND");
        await expectCode(s.acquire(good.chainID, ""), "ERR_INVALID_HOLDER");
      }),
    );

    it(
      "media types: requested ones are kept when they agree with the bytes, corrected otherwise",
      withStore(async (s) => {
        const a = await s.register([tar(12)], null, { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" });
        expect(a.blob.mediaType).toBe("application/vnd.oci.image.layer.v1.tar");
        const b = await s.register([gzipSync(tar(13))], null, { mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip" });
        expect(b.blob.mediaType).toBe("application/vnd.docker.image.rootfs.diff.tar.gzip");
        const c = await s.register([tar(14)], null, { mediaType: "application/vnd.example.custom" });
        expect(c.blob.mediaType).toBe("application/vnd.example.custom");
      }),
    );

    it(
      "an expired lease is garbage: hasGarbage says so, fsck counts its blob as garbage (ok), and GC takes both",
      withStore(async (s) => {
        expect(await s.hasGarbage()).toBe(false);
        const lease = await s.lease({ expiresInMs: 300 });
        const facts = await s.ingestLayer([tar(18)], { lease });
        await new Promise((r) => setTimeout(r, 400));
        expect(await s.hasGarbage()).toBe(true);
        const report = await s.fsck({ keepBlobs: [] });
        expect(report.ok).toBe(true);
        expect(report.problems.length).toBeGreaterThan(0);
        expect(report.problems.every((p) => p.garbage)).toBe(true);
        expect(report.garbage.bytes).toBeGreaterThanOrEqual(facts.blob.size);
        expect((await s.gc()).removedBlobs).toEqual([facts.blob.digest]);
        expect(await s.hasGarbage()).toBe(false);
        expect((await s.fsck({ keepBlobs: [] })).problems).toEqual([]);
      }),
    );

    it(
      "acquire/release keep layers and their parents from GC; release of a non-holder is typed",
      withStore(async (s) => {
        const a = await s.register([tar(15)]);
        const b = await s.register([gzipSync(tar(16))], a.chainID);
        const c = await s.register([tar(17)]);
        expect(await s.acquire(b.chainID, "image:one")).toEqual(await s.get(b.chainID));
        await s.acquire(b.chainID, "image:one"); // idempotent
        await s.acquire(b.chainID, "image:two");
        expect(await s.holders(b.chainID)).toEqual(["image:one", "image:two"]);
        const r1 = await s.gc();
        expect(r1.removedLayers).toEqual([c.chainID]);
        expect(r1.removedBlobs).toEqual([c.blob.digest]);
        expect(r1.freedBytes).toBe(c.blob.size);
        await s.release(b.chainID, "image:one");
        await expectCode(s.release(b.chainID, "image:one"), "ERR_LAYER_NOT_RETAINED");
        expect((await s.gc()).removedLayers).toEqual([]);
        await s.release(b.chainID, "image:two");
        const r2 = await s.gc();
        expect(r2.removedLayers.sort()).toEqual([a.chainID, b.chainID].sort());
        expect(r2.freedBytes).toBe(a.blob.size + b.blob.size);
        expect(await s.list()).toEqual([]);
        expect(await listDigests(s.content)).toEqual([]);
        await expectCode(s.release(b.chainID, "image:two"), "ERR_LAYER_NOT_FOUND");
      }),
    );

    it(
      "register with a holder acquires atomically",
      withStore(async (s) => {
        const a = await s.register([tar(18)], null, { holder: "cache:x" });
        expect(await s.holders(a.chainID)).toEqual(["cache:x"]);
        expect((await s.gc()).removedLayers).toEqual([]);
      }),
    );

    it(
      "leases and keepBlobs protect content from GC until released",
      withStore(async (s) => {
        const lease = await s.lease();
        const a = await s.register([tar(19)], null, { lease });
        const cfg = await s.content.put(randomBytesFor(20, 50), {}, { lease });
        const loose = await s.content.put(randomBytesFor(21, 50));
        const r = await s.gc({ keepBlobs: [] });
        expect(r.removedBlobs).toEqual([loose.digest]);
        expect(await s.has(a.chainID)).toBe(true);
        await lease.release();
        await lease.release();
        const r2 = await s.gc({ keepBlobs: [cfg.digest] });
        expect(r2.removedLayers).toEqual([a.chainID]);
        expect(r2.removedBlobs).toEqual([a.blob.digest]);
        expect(await s.content.has(cfg.digest)).toBe(true);
        await expectCode(s.register([tar(22)], null, { lease }), "ERR_LEASE_NOT_FOUND");
      }),
    );

    it(
      "leaseLayer protects an existing layer and the chain under it until released; a missing layer is false",
      withStore(async (s) => {
        const a = await s.register([tar(23)]);
        const b = await s.register([tar(24)], a.chainID);
        const lease = await s.lease();
        expect(await s.leaseLayer(b.chainID, lease)).toBe(true);
        expect(await s.leaseLayer(`sha256:${"0".repeat(64)}`, lease)).toBe(false);
        expect((await s.gc()).removedLayers).toEqual([]);
        expect(await s.has(a.chainID)).toBe(true);
        await lease.release();
        expect((await s.gc()).removedLayers.sort()).toEqual([a.chainID, b.chainID].sort());
        await expectCode(s.leaseLayer(a.chainID, lease), "ERR_LEASE_NOT_FOUND");
      }),
    );

    it(
      "leased() lists what live leases protect, and forgets a lease once released",
      withStore(async (s) => {
        const lease = await s.lease();
        const blob = await s.content.put(randomBytesFor(47, 50), {}, { lease });
        const layer = await s.register([tar(48)], null, { lease });
        const now = await s.leased();
        expect(now.blobs.has(blob.digest)).toBe(true);
        expect(now.layers.has(layer.chainID)).toBe(true);
        await lease.release();
        const after = await s.leased();
        expect(after.blobs.has(blob.digest)).toBe(false);
        expect(after.layers.has(layer.chainID)).toBe(false);
      }),
    );

    it(
      "sweepLease removes only what that lease protects and nothing else references, and releases it",
      withStore(async (s) => {
        const loose = await s.content.put(randomBytesFor(40, 50));
        const kept = await s.register([tar(41)]);
        await s.acquire(kept.chainID, "image:kept");
        const other = await s.lease();
        const failed = await s.lease();
        const shared = await s.content.put(randomBytesFor(42, 50), {}, { lease: other });
        await s.content.put(randomBytesFor(42, 50), {}, { lease: failed });
        const own = await s.register([tar(43)], kept.chainID, { lease: failed });
        const ownBlob = await s.content.put(randomBytesFor(44, 50), {}, { lease: failed });
        await s.register([tar(41)], null, { lease: failed }); // there before, held by an image
        const cfg = await s.content.put(randomBytesFor(45, 50), {}, { lease: failed });
        const r = await s.gc({ sweepLease: failed, keepBlobs: [cfg.digest] });
        expect(r.removedLayers).toEqual([own.chainID]);
        expect(r.removedBlobs).toEqual([own.blob.digest, ownBlob.digest].sort());
        for (const d of [loose.digest, shared.digest, kept.blob.digest, cfg.digest]) expect(await s.content.has(d)).toBe(true);
        await expectCode(s.register([tar(46)], null, { lease: failed }), "ERR_LEASE_NOT_FOUND");
        await other.release();
      }),
    );

    it(
      "extra roots may be computed by a function GC calls",
      withStore(async (s) => {
        const a = await s.register([tar(31)]);
        const cfg = await s.content.put(randomBytesFor(32, 20));
        let called = 0;
        const r = await s.gc({
          roots: async () => {
            called++;
            return { blobs: [cfg.digest], layers: [a.chainID] };
          },
        });
        expect(called).toBe(1);
        expect(r.removedBlobs).toEqual([]);
        expect(r.removedLayers).toEqual([]);
        await expectCode(s.gc({ roots: () => ({ blobs: ["../x"] }) }), DIGEST_CODES);
        expect(await s.has(a.chainID)).toBe(true);
      }),
    );

    it(
      "expired leases protect nothing",
      withStore(async (s) => {
        // Long enough for the register to finish on a loaded machine; then wait it out.
        const start = Date.now();
        const lease = await s.lease({ expiresInMs: 1500 });
        const a = await s.register([tar(23)], null, { lease });
        await new Promise((r) => setTimeout(r, Math.max(0, start + 1600 - Date.now())));
        expect((await s.gc()).removedLayers).toEqual([a.chainID]);
        await expectCode(s.register([tar(24)], null, { lease }), "ERR_LEASE_NOT_FOUND");
      }),
    );

    it(
      "metadata persists across reopen",
      withStore(async (s, f) => {
        if (!f.reopen) return;
        const a = await s.register([tar(24)]);
        const b = await s.register([gzipSync(tar(25))], a.chainID, { holder: "image:p" });
        const s2 = await f.reopen();
        const layers: Layer[] = await s2.list();
        expect(layers).toEqual([await s.get(a.chainID), await s.get(b.chainID)].sort((x, y) => (x.chainID < y.chainID ? -1 : 1)));
        expect(layers.map((l) => l.contentSize)).toEqual([3000, 3000]);
        expect(await s2.holders(b.chainID)).toEqual(["image:p"]);
        expect((await s2.gc()).removedLayers).toEqual([]);
        const again = await s2.register([gzipSync(tar(25))], a.chainID);
        expect(again.existed).toBe(true);
      }),
    );

    it(
      "fsck: a healthy store is clean; orphan blobs are judged only against given roots",
      withStore(async (s) => {
        const a = await s.register([gzipSync(tar(27))], null, { holder: "h" });
        await s.register([tar(28)], a.chainID);
        const cfg = await s.content.put(randomBytesFor(29, 40));
        const loose = await s.content.put(randomBytesFor(30, 40));
        const r = await s.fsck();
        expect(r.problems).toEqual([]);
        expect(r.ok).toBe(true);
        expect(r.checkedLayers).toBe(2);
        const r2 = await s.fsck({ keepBlobs: [cfg.digest] });
        expect(r2.problems.map((p) => [p.kind, p.digest, p.repaired])).toEqual([["blob-orphan", loose.digest, false]]);
        const r3 = await s.fsck({ keepBlobs: [cfg.digest], repair: true });
        expect(r3.problems.map((p) => [p.kind, p.repaired])).toEqual([["blob-orphan", true]]);
        expect(await s.content.has(loose.digest)).toBe(false);
        expect(await s.content.has(cfg.digest)).toBe(true);
        expect((await s.fsck({ keepBlobs: [cfg.digest] })).ok).toBe(true);
      }),
    );

    it(
      "progress is reported in blob bytes",
      withStore(async (s) => {
        const t = tar(26, 10_000);
        const seen: number[] = [];
        await s.register([t.subarray(0, 4000), t.subarray(4000)], null, { onProgress: (n) => seen.push(n) });
        // rising, ending at the blob's size (small chunks may be reported together)
        expect(seen.at(-1)).toBe(t.length);
        expect(seen.every((n, i) => n > 0 && (i === 0 || n > seen[i - 1]!))).toBe(true);
      }),
    );
  });
}

export type { Digest };
