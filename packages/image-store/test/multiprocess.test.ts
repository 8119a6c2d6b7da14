import { promises as fsp } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, parseIndex } from "../src/index.js";
import { tempRoot } from "./helpers.js";
import { startWorker } from "./support/spawn.js";

let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempRoot("berth-image-store-mp-"));
});
afterAll(() => cleanup());

describe("several processes writing one root at once", () => {
  it("keeps every image and every tag", async () => {
    const workers = 4;
    const count = 5;
    const logs = Array.from({ length: workers }, (_, i) => path.join(root, `..`, `${path.basename(root)}-w${i}.log`));
    const runs = logs.map((log, i) => startWorker({ root, mode: "overlap", seed: i, count, log }));
    const exits = await Promise.all(runs.map((r) => r.exit));
    for (const e of exits) expect(e.stderr + String(e.code)).toBe("0");

    // What each worker reported committed.
    const created = new Set<string>();
    const ownTags = new Map<string, string>();
    const sharedTags = new Map<string, Set<string>>();
    for (const log of logs) {
      const lines = (await fsp.readFile(log, "utf8")).trim().split("\n");
      expect(lines.at(-1)).toBe("finished");
      for (const l of lines) {
        const m = /^done create (?:shared|own) \d+ (sha256:[a-f0-9]{64})$/.exec(l);
        if (m) created.add(m[1]!);
        const t = /^done tag (w\d+-tag:\d+) (sha256:[a-f0-9]{64})$/.exec(l);
        if (t) ownTags.set(`docker.io/library/${t[1]}`, t[2]!);
        const s = /^done tag (shared:\d+) (sha256:[a-f0-9]{64})$/.exec(l);
        if (s) {
          const set = sharedTags.get(`docker.io/library/${s[1]}`) ?? new Set();
          set.add(s[2]!);
          sharedTags.set(`docker.io/library/${s[1]}`, set);
        }
      }
      await fsp.rm(log, { force: true });
    }
    // Shared images are the same across workers (same config bytes), so:
    expect(created.size).toBe(count + workers * count);
    expect(ownTags.size).toBe(workers * count);

    const store = await openStore({ root });
    try {
      expect(new Set(await store.images.ids())).toEqual(created);
      for (const [ref, id] of ownTags) expect(await store.references.resolve(ref)).toBe(id);
      for (const [ref, ids] of sharedTags) {
        expect(ids.size).toBe(1);
        expect(await store.references.resolve(ref)).toBe([...ids][0]);
      }
      // Parent chains each worker built survived too.
      for (let w = 0; w < workers; w++) {
        for (let k = 1; k < count; k++) {
          const id = await store.references.resolve(`w${w}-tag:${k}`);
          expect(await store.images.getParent(id)).toBe(await store.references.resolve(`w${w}-tag:${k - 1}`));
        }
      }
      // index.json lists every tag exactly once.
      const idx = parseIndex(await fsp.readFile(path.join(root, "index.json")), "index.json");
      const names = idx.manifests.map((m) => m.annotations?.["org.opencontainers.image.ref.name"]).sort();
      expect(names).toEqual([...ownTags.keys(), ...sharedTags.keys()].sort());
      const report = await store.fsck();
      expect(report.problems).toEqual([]);
    } finally {
      await store.close();
    }
  }, 180_000);
});
