import { hasCode } from "@berth/digest";
import { describe, expect, it } from "vitest";
import { openLayerStore } from "../src/index.js";
import { spawnWorker, watch } from "./child.js";
import { tempRoot } from "./helpers.js";

// BERTH_CRASH_TRIALS=500 for a longer run (default 50).
const TRIALS = Number(process.env.BERTH_CRASH_TRIALS ?? 50);
// Problems a crash may leave that are garbage, not damage (GC/fsck repair remove them).
const GARBAGE = new Set(["lease-dead"]);

describe("crash safety (SIGKILL at random moments)", () => {
  // The timeout is a hang guard, not a speed check: a round whose kill lands between a lock's
  // mkdir and its owner file waits out the 10 s stale time (lock.ts), and CI machines are loaded.
  it(`survives ${TRIALS} kills: opens, every record resolves, every blob verifies, held layers survive`, { timeout: 60_000 + TRIALS * 6_000 }, async () => {
    const t = await tempRoot("berth-crash-");
    try {
      // holds: "<chainID> <holder>" -> true when acquired and not being released
      const holds = new Map<string, boolean>();
      let seed = 12345;
      let totalOps = 0;
      // Each round runs two workers side by side on the same root and kills each
      // at its own random moment: two crashes (trials) per round.
      const ROUNDS = Math.ceil(TRIALS / 2);
      for (let trial = 0; trial < ROUNDS; trial++) {
        const t0 = Date.now();
        const workers = [0, 1].map((i) => {
          const child = spawnWorker("crash-worker.ts", [t.root, String(seed++), `w${i}`]);
          return { child, w: watch(child) };
        });
        await Promise.all(workers.map(async ({ child, w }) => {
          await w.waitFor("ready");
          // the kill lands while the worker works: after its first operation (however slow a loaded machine makes it), then at a random moment
          for (let waited = 0; w.lines.length < 2 && waited < 60_000; waited += 5) await new Promise((r) => setTimeout(r, 5));
          await new Promise((r) => setTimeout(r, 10 + Math.floor(Math.random() * 200)));
          child.kill("SIGKILL");
          const exit = await w.exited;
          expect(exit.signal, w.stderr()).toBe("SIGKILL");
        }));
        const t1 = Date.now();
        for (const { w } of workers) {
          for (const line of w.lines) {
            const [verb, chainID, holder] = line.split(" ");
            if (verb === "held") holds.set(`${chainID} ${holder}`, true);
            else if (verb === "releasing") holds.delete(`${chainID} ${holder}`);
          }
          totalOps += w.lines.length;
        }

        const store = await openLayerStore({ root: t.root });
        const report = await store.fsck();
        const damage = report.problems.filter((p) => !GARBAGE.has(p.kind));
        expect(damage, `trial ${trial}`).toEqual([]);
        for (const layer of await store.list()) {
          expect(await store.content.has(layer.blob.digest)).toBe(true);
          if (layer.parent) expect(await store.has(layer.parent)).toBe(true);
        }
        for (const key of holds.keys()) {
          const [chainID, holder] = key.split(" ") as [string, string];
          // An acquire that returned is durable (unless a later release of it was in flight).
          try {
            expect(await store.holders(chainID), `trial ${trial}: ${key}`).toContain(holder);
            await store.get(chainID);
          } catch (err) {
            if (hasCode(err, "ERR_LAYER_NOT_FOUND")) throw new Error(`trial ${trial}: held layer ${chainID} is gone`);
            throw err;
          }
        }
        if (process.env.BERTH_CRASH_DEBUG) console.log(`round ${trial}: run ${t1 - t0}ms, check ${Date.now() - t1}ms`);
        if (trial % 5 === 4) {
          await store.fsck({ repair: true });
          await store.gc();
          expect((await store.fsck()).problems).toEqual([]);
        }
      }
      expect(totalOps).toBeGreaterThan(TRIALS);
    } finally {
      await t.cleanup();
    }
  });
});
