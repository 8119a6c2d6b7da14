import { gzipSync } from "node:zlib";
import { chainIds, sha256 } from "@berth/digest";
import { describe, expect, it } from "vitest";
import { openLayerStore } from "../src/index.js";
import { tarFor } from "../src/fixtures.js";
import { spawnWorker, watch } from "./child.js";
import { tempRoot } from "./helpers.js";

const CHILDREN = Number(process.env.BERTH_CONCURRENCY_CHILDREN ?? 4);
const ROUNDS = Number(process.env.BERTH_CONCURRENCY_ROUNDS ?? 3);

describe("concurrency", () => {
  it(`${CHILDREN} processes register overlapping layers and GC at once: all survive, one blob per content`, async () => {
    const t = await tempRoot("berth-conc-");
    try {
      const runs = Array.from({ length: CHILDREN }, (_, i) => watch(spawnWorker("concurrent-worker.ts", [t.root, String(i), String(ROUNDS)])));
      const exits = await Promise.all(runs.map((r) => r.exited));
      exits.forEach((e, i) => {
        expect(e.code, runs[i]!.stderr()).toBe(0);
        expect(runs[i]!.lines).toContain("done");
      });
      const contents = Array.from({ length: 6 }, (_, k) => tarFor(1000 + k, 1024 + k * 700));
      const blobs = contents.map((c, k) => (k % 2 === 0 ? gzipSync(c) : c));
      const chain = chainIds(contents.map((c) => sha256(c)));
      const store = await openLayerStore({ root: t.root });
      expect(await store.holders(chain[5]!)).toEqual(Array.from({ length: CHILDREN }, (_, i) => `child-${i}`));
      expect((await store.fsck()).problems).toEqual([]);
      await store.gc();
      expect((await store.list()).map((l) => l.chainID).sort()).toEqual([...chain].sort());
      const stored: string[] = [];
      for await (const b of store.content.list()) stored.push(b.digest);
      expect(stored.sort()).toEqual(blobs.map((b) => sha256(b)).sort());
      const { readdir } = await import("node:fs/promises");
      expect(await readdir(`${t.root}/ingest`)).toEqual([]);
    } finally {
      await t.cleanup();
    }
  });

  it("concurrent registers of the same content in one process all succeed with one blob", async () => {
    const t = await tempRoot();
    try {
      const store = await openLayerStore({ root: t.root });
      const blob = gzipSync(tarFor(7, 50_000));
      const res = await Promise.all(Array.from({ length: 8 }, () => store.register([blob])));
      expect(new Set(res.map((r) => r.chainID)).size).toBe(1);
      expect(res.filter((r) => !r.existed)).toHaveLength(1);
      const stored: string[] = [];
      for await (const b of store.content.list()) stored.push(b.digest);
      expect(stored).toEqual([sha256(blob)]);
    } finally {
      await t.cleanup();
    }
  });
});
