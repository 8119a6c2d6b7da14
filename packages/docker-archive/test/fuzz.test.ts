/**
 * Fuzzing (fast-check) the tar reader and the archive loader over mutated
 * archives (issue 17): legacy `docker save`, OCI layout and whole-gzip
 * archives of a two-layer image (plain and gzip'd layers), damaged by byte
 * flips, cuts, inserted and repeated ranges. Every case reads to the end or
 * is refused with a typed error (a BerthError with an `ERR_` code) — never a
 * TypeError, a hang or a crash — and a refused load leaves the store as it
 * was: no image, no tag, no ingest file.
 *
 * 5,000 cases per target by default; `BERTH_FUZZ_RUNS=100000` for the long
 * run, `BERTH_FUZZ_SEED` to replay a reported seed (RELIABILITY.md).
 */
import { gzipSync } from "node:zlib";
import { BerthError } from "@berth/digest";
import { openMemoryStore } from "@berth/image-store";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ArchiveStore, load, readTar } from "../src/index.js";
import { imageOf, layerTar, legacyEntries, ociEntries, tarOf } from "./helpers.js";

const RUNS = Number(process.env.BERTH_FUZZ_RUNS ?? 5000);
const SEED = process.env.BERTH_FUZZ_SEED === undefined ? undefined : Number(process.env.BERTH_FUZZ_SEED);
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

let archives: Uint8Array[];
beforeAll(async () => {
  const l1 = await layerTar({ "etc/os-release": "ID=fuzz\n", "bin/tool": "x".repeat(2000) });
  const l2 = await layerTar({ "app/run.sh": "#!/bin/sh\necho fuzz\n", "etc/.wh.os-release": "" });
  const plain = imageOf([l1, l2], { label: "plain" });
  const gz = imageOf([l1, l2], { gzip: true, label: "gzip" });
  const legacy = await tarOf(legacyEntries([{ img: plain, tags: ["fuzz/app:1"] }]));
  archives = [legacy, await tarOf(ociEntries(gz, "fuzz/app:2").entries), gzipSync(legacy)];
});

/** One damage to an archive, placed by fractions of its length. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), bytes: fc.uint8Array({ minLength: 1, maxLength: 600 }) }),
  fc.record({ kind: fc.constant("repeat" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), len: fc.integer({ min: 1, max: 2048 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function damage(bytes: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let b = Buffer.from(bytes);
  for (const m of ms) {
    const at = Math.min(b.length - 1, Math.floor(m.at * b.length));
    if (m.kind === "flip") {
      b = Buffer.from(b);
      b[at] = b[at]! ^ m.xor;
    } else if (m.kind === "cut") b = b.subarray(0, at);
    else if (m.kind === "insert") b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at + m.len), b.subarray(at, at + m.len), b.subarray(at + m.len)]);
    if (b.length === 0) break;
  }
  return b;
}

const damaged = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 4096 }));

/** The bytes in chunks of `size` (chunk boundaries are part of what is fuzzed). */
function* chunks(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

const seen = { ok: 0, refused: new Map<string, number>() };
function typed(err: unknown): void {
  if (!(err instanceof BerthError) || !/^ERR_[A-Z0-9_]+$/.test(err.code)) throw err;
  seen.refused.set(err.code, (seen.refused.get(err.code) ?? 0) + 1);
}

describe("fuzzing the tar reader (fast-check)", () => {
  it(`${RUNS} damaged archives: every entry and body read to the end, or a typed error`, async () => {
    seen.ok = 0;
    seen.refused.clear();
    await fc.assert(
      fc.asyncProperty(damaged, async ([which, ms, chunk]) => {
        const bytes = damage(archives[which === 2 ? 0 : which]!, ms);
        try {
          for await (const e of readTar(chunks(bytes, chunk))) {
            let n = 0;
            for await (const c of e.body()) n += c.length;
            expect(n).toBe(e.type === "file" ? e.size : 0);
          }
          seen.ok++;
        } catch (err) {
          typed(err);
        }
      }),
      params,
    );
    // the damage reaches past the first header: both outcomes, several kinds of refusal
    if (process.env.BERTH_FUZZ_VERBOSE) console.log("tar", seen.ok, [...seen.refused]);
    expect(seen.ok).toBeGreaterThan(RUNS / 50);
    expect(seen.refused.size).toBeGreaterThanOrEqual(2);
  }, 600_000);
});

describe("fuzzing the archive loader (fast-check)", () => {
  let store: Awaited<ReturnType<typeof openMemoryStore>>;
  beforeAll(async () => {
    store = await openMemoryStore();
  });
  afterAll(async () => {
    await store?.close();
  });

  it(`${RUNS} damaged archives (legacy, OCI, gzip'd): loaded whole, or refused with a typed error and nothing kept`, async () => {
    seen.ok = 0;
    seen.refused.clear();
    const s = store as unknown as ArchiveStore;
    await fc.assert(
      fc.asyncProperty(damaged, async ([which, ms, chunk]) => {
        const bytes = damage(archives[which]!, ms);
        const before = { images: await store.images.len(), refs: (await store.references.list()).length };
        try {
          const r = await load(s, chunks(bytes, chunk), { memoryBudget: 1 << 20 });
          // a damage that left the archive loadable (a flip in padding, a repeat past the end)
          expect(r.images.length).toBeGreaterThan(0);
          seen.ok++;
        } catch (err) {
          typed(err);
          expect(await store.images.len()).toBe(before.images);
          expect((await store.references.list()).length).toBe(before.refs);
        }
        // loaded images go again, so each case starts from an empty store
        for (const { ref } of await store.references.list()) await store.references.untag(ref);
        for (const id of await store.images.ids()) await store.images.delete(id);
        await store.gc();
      }),
      params,
    );
    if (process.env.BERTH_FUZZ_VERBOSE) console.log("loader", seen.ok, [...seen.refused]);
    expect(seen.refused.size).toBeGreaterThanOrEqual(4);
    expect(seen.ok).toBeGreaterThan(0);
  }, 600_000);
});
