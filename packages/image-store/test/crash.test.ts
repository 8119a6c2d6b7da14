import { promises as fsp } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../src/index.js";
import { tempRoot } from "./helpers.js";
import { startWorker } from "./support/spawn.js";

// ≥ 50 trials in the normal suite; BERTH_SLOW=1 runs 300 (documented in the README).
const TRIALS = process.env.BERTH_SLOW === "1" ? 300 : 50;
const PARALLEL = 3; // trials mostly wait (child start, random delay), so three overlap well on 2 cores

/** Problems a SIGKILL may legitimately leave: garbage that repair/GC removes, never damage. */
const GARBAGE = new Set([
  "layer-hold-orphan", // killed between acquiring the layer and recording the image
  "journal-torn-tail", // killed in the middle of an append
  "blob-orphan", // config/manifest/layer blob written, image not recorded
  "stale-ingest",
  "stale-temp",
  "lease-dead",
]);

interface Expected {
  images: Set<string>;
  tags: Map<string, string>;
  inflight: string | undefined;
}

function expectedFrom(log: string): Expected {
  const images = new Set<string>();
  const tags = new Map<string, string>();
  let inflight: string | undefined;
  for (const line of log.split("\n")) {
    if (line.startsWith("begin ")) {
      inflight = line.slice(6);
      continue;
    }
    if (!line.startsWith("done ")) continue;
    inflight = undefined;
    const f = line.slice(5).split(" ");
    if (f[0] === "create") images.add(f[2]!);
    else if (f[0] === "delete") {
      images.delete(f[1]!);
      for (const [ref, id] of tags) if (id === f[1]) tags.delete(ref);
    } else if (f[0] === "tag") tags.set(`docker.io/${f[1]}`, f[2]!);
    else if (f[0] === "untag") tags.delete(`docker.io/${f[1]}`);
  }
  return { images, tags, inflight };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let base: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: base, cleanup } = await tempRoot("berth-image-store-crash-"));
});
afterAll(() => cleanup());

async function trial(n: number): Promise<{ ops: number; kinds: string[] }> {
  const root = path.join(base, `t${n}`);
  const log = path.join(base, `t${n}.log`);
  await fsp.mkdir(root, { recursive: true });
  const { child, exit } = startWorker({ root, mode: "crash", seed: n + 1, count: 0, log });
  // Kill at a random moment: one trial in ten while the worker opens the
  // store, the others a random time after its first operation committed
  // (timed from readiness, so a slow start on a loaded machine does not turn
  // every trial into a kill-at-startup).
  if (n % 10 === 9) {
    await sleep(Math.floor(Math.random() * 600));
  } else {
    const deadline = Date.now() + 60_000;
    while (!(await fsp.readFile(log, "utf8").catch(() => "")).includes("done register base")) {
      if (Date.now() > deadline || child.exitCode !== null) break;
      await sleep(20);
    }
    await sleep(Math.floor(Math.random() * 700));
  }
  child.kill("SIGKILL");
  const e = await exit;
  if (e.signal !== "SIGKILL") throw new Error(`worker ${n} exited early (${e.code}): ${e.stderr}`);
  const text = await fsp.readFile(log, "utf8").catch(() => "");
  const want = expectedFrom(text);

  const store = await openStore({ root });
  try {
    const report = await store.fsck();
    const bad = report.problems.filter((p) => !GARBAGE.has(p.kind));
    expect(bad, `trial ${n}: ${JSON.stringify(bad)} (in flight: ${want.inflight})`).toEqual([]);
    // fsck calls it garbage too: the report stays ok (berth fsck exits 0)
    expect(report.problems.every((p) => p.garbage)).toBe(true);
    expect(report.ok).toBe(true);
    const inflight = want.inflight ?? "";
    // Committed images are all there, and readable (config verified, manifest, layers).
    for (const id of want.images) {
      if (inflight === `delete ${id}`) continue;
      const img = await store.images.get(id);
      expect((await store.images.manifest(id)).digest).toBe(img.manifestDigest);
      if (img.chainID) expect((await store.layers.get(img.chainID)).chainID).toBe(img.chainID);
    }
    // Nothing else, except the one being created when killed.
    for (const id of await store.images.ids()) {
      if (!want.images.has(id)) expect(inflight.startsWith("create ")).toBe(true);
    }
    // Every reference resolves to what was committed (unless the in-flight op touched it).
    for (const [ref, id] of want.tags) {
      const short = ref.slice("docker.io/".length);
      if (inflight.startsWith(`tag ${short} `) || inflight === `untag ${short}` || inflight === `delete ${id}`) continue;
      expect(await store.references.resolve(ref), `trial ${n}: ${ref}`).toBe(id);
    }
    for (const { id } of await store.references.list()) expect(await store.images.has(id)).toBe(true);
    // The next ordinary write's collection removes dead leases and stale files (and
    // what only they protected); this worker writes without leases and deletes without
    // pruning, so its orphan blobs and holds wait for a GC or repair.
    await store.collectGarbage();
    expect(await store.layers.hasGarbage()).toBe(false);
    const left = (await store.fsck()).problems.filter((p) => ["lease-dead", "stale-ingest", "stale-temp"].includes(p.kind));
    expect(left, `trial ${n} after collectGarbage`).toEqual([]);
    // Repair leaves nothing at all.
    await store.fsck({ repair: true });
    const after = await store.fsck();
    expect(after.problems, `trial ${n} after repair`).toEqual([]);
    expect(after.ok).toBe(true);
    for (const id of want.images) if (inflight !== `delete ${id}`) expect(await store.images.has(id)).toBe(true);
    return { ops: text.split("\n").filter((l) => l.startsWith("done ")).length, kinds: report.problems.map((p) => p.kind) };
  } finally {
    await store.close();
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(log, { force: true });
  }
}

describe("crash safety (SIGKILL at random moments)", () => {
  it(`survives ${TRIALS} kills: opens, references resolve, committed images present, repair leaves it clean`, async () => {
    let next = 0;
    let ops = 0;
    const kinds = new Map<string, number>();
    const runner = async () => {
      while (next < TRIALS) {
        const n = next++;
        const r = await trial(n);
        ops += r.ops;
        for (const k of r.kinds) kinds.set(k, (kinds.get(k) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, runner));
    // The workers did real work before being killed.
    expect(ops).toBeGreaterThan(TRIALS);
    console.log(`crash trials: ${TRIALS}, committed ops: ${ops}, garbage found: ${JSON.stringify(Object.fromEntries(kinds))}`);
  }, 900_000);
});
