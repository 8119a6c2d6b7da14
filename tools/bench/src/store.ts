/**
 * Image store benchmark (@berth/image-store over @berth/layer-store):
 * a store with 100,000 images (synthetic configs over a few shared small
 * layers), measuring
 *
 * - open (restore all image metadata and references) — target ≤ 2 s
 * - `images.search` by 12-hex prefix, per lookup — target ≤ 20 µs
 * - `references.resolve` of a tag, per lookup
 * - `images.heads()` listing
 * - create / delete throughput (one at a time, and `createMany`)
 * - memory after open (RSS, heap)
 *
 * The 100k-image store is built once through the public API (`createMany` in
 * a builder process) and cached in
 * `$BERTH_BENCH_STORE_DIR` (default `/dev/shm/berth-bench-store-<n>-v1`, tmpfs
 * so the one-time build is not bound by fsync; falls back to the OS temp dir).
 * Throughput is measured on that store and on a fresh store on the real disk.
 *
 *   npx tsc -p tools/bench/tsconfig.build.json && node --expose-gc tools/bench/dist/store.js
 *   BERTH_BENCH_IMAGES=20000 node tools/bench/dist/store.js   # smaller store
 */
import { fork } from "node:child_process";
import { existsSync, promises as fsp, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Digest, DigestSet, sha256 } from "@berth/digest";
import { type FsStore, openStore } from "@berth/image-store";
import { makeTar } from "@berth/image-store/tar-fixture";

/** The shared layers: base, base+a, base+b, base+a+c. */
const enc = new TextEncoder();
const tar = (name: string, content: string) => makeTar({ [name]: content });
const TARS = [tar("base.txt", "base layer"), tar("a.txt", "layer a"), tar("b.txt", "layer b"), tar("c.txt", "layer c")];
const CHAINS = [[0], [0, 1], [0, 2], [0, 1, 3]].map((c) => c.map((i) => sha256(TARS[i]!)));

function config(i: number, salt = "img"): Uint8Array {
  const diffIds = CHAINS[i % CHAINS.length]!;
  return enc.encode(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      created: new Date(1_700_000_000_000 + i * 1000).toISOString(),
      config: { Cmd: ["/bin/sh", "-c", `echo ${salt} ${i}`], Env: ["PATH=/usr/bin:/bin"], Labels: { n: String(i) } },
      history: diffIds.map((_, k) => ({ created_by: `step ${k}` })),
      rootfs: { type: "layers", diff_ids: diffIds },
    }),
  );
}

async function registerLayers(store: FsStore): Promise<void> {
  const base = await store.layers.register([TARS[0]!]);
  const a = await store.layers.register([TARS[1]!], base.chainID);
  await store.layers.register([TARS[2]!], base.chainID);
  await store.layers.register([TARS[3]!], a.chainID);
}

function defaultDir(n: number): string {
  const env = process.env.BERTH_BENCH_STORE_DIR;
  if (env) return env;
  const parent = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  return path.join(parent, `berth-bench-store-${n}-v1`);
}

/** Builder process: create images [start, end) in batches. */
async function buildRange(root: string, start: number, end: number): Promise<void> {
  const store = await openStore({ root });
  await registerLayers(store);
  const BATCH = 1000;
  for (let i = start; i < end; i += BATCH) {
    const configs: Uint8Array[] = [];
    for (let k = i; k < Math.min(end, i + BATCH); k++) configs.push(config(k));
    await store.images.createMany(configs);
    process.send?.({ done: Math.min(end, i + BATCH) - i });
  }
  await store.close();
}

async function build(root: string, n: number): Promise<number> {
  const t0 = performance.now();
  await fsp.rm(root, { recursive: true, force: true });
  await fsp.mkdir(root, { recursive: true });
  const WORKERS = 1;
  const self = fileURLToPath(import.meta.url);
  let done = 0;
  let lastReport = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, (_, w) => {
      const start = Math.floor((n * w) / WORKERS);
      const end = Math.floor((n * (w + 1)) / WORKERS);
      return new Promise<void>((resolve, reject) => {
        const child = fork(self, ["--build-range", root, String(start), String(end)], { stdio: "inherit" });
        child.on("message", (m: { done: number }) => {
          done += m.done;
          if (done - lastReport >= n / 20) {
            lastReport = done;
            process.stdout.write(`  built ${done}/${n} images (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
          }
        });
        child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`builder ${w} exited with ${code}`))));
      });
    }),
  );
  // A few parents (so heads() has work) and tags (so index.json and resolve do).
  const store = await openStore({ root });
  const ids = await store.images.ids();
  for (let k = 1; k < Math.min(1000, ids.length); k++) await store.images.setParent(ids[k]!, ids[k - 1]!);
  for (let k = 0; k < Math.min(1000, ids.length); k++) await store.references.tag(`bench/app${k % 100}:v${Math.floor(k / 100)}`, ids[k]!);
  await store.close();
  await fsp.writeFile(path.join(root, ".bench-complete"), String(n));
  return (performance.now() - t0) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;

/** Time creating then deleting `count` images one at a time on `store`. */
async function throughput(store: FsStore, count: number, salt: string) {
  const configs = Array.from({ length: count }, (_, i) => config(i, salt));
  let t = performance.now();
  const ids: Digest[] = [];
  for (const c of configs) ids.push((await store.images.create(c)).id);
  const createPerSec = count / ((performance.now() - t) / 1000);
  t = performance.now();
  for (const id of ids) await store.images.delete(id);
  const deletePerSec = count / ((performance.now() - t) / 1000);
  const many = Array.from({ length: count }, (_, i) => config(i, `${salt}-many`));
  t = performance.now();
  const manyIds = await store.images.createMany(many);
  const createManyPerSec = count / ((performance.now() - t) / 1000);
  for (const id of manyIds) await store.images.delete(id);
  return { createPerSec, deletePerSec, createManyPerSec };
}

/** Run the benchmark; returns the measurements (also printed). */
export async function run(args: string[] = []): Promise<Record<string, unknown>> {
  const n = Number(process.env.BERTH_BENCH_IMAGES ?? args[0] ?? 100_000);
  const root = defaultDir(n);
  let buildSeconds: number | undefined;
  if (!existsSync(path.join(root, ".bench-complete"))) {
    process.stdout.write(`store: building a ${n}-image store in ${root} (once; cached for later runs)\n`);
    buildSeconds = await build(root, n);
    process.stdout.write(`store: built in ${buildSeconds.toFixed(0)} s (${(n / buildSeconds).toFixed(0)} images/s with createMany)\n`);
  }
  const metaBytes = ["snapshot.log", "journal.log"].reduce((s, f) => {
    try {
      return s + statSync(path.join(root, "images", f)).size;
    } catch {
      return s;
    }
  }, 0);

  // Open (restore): first open warms the page cache; then the median of 5.
  const rssBefore = process.memoryUsage().rss;
  const opens: number[] = [];
  let store: FsStore | undefined;
  for (let i = 0; i < 6; i++) {
    await store?.close();
    (globalThis as { gc?: () => void }).gc?.();
    const t = performance.now();
    store = await openStore({ root });
    opens.push(performance.now() - t);
  }
  store = store!;
  const count = await store.images.len();

  // Prefix search by 12 hex characters (what `docker images` shows). The
  // first one after open builds the prefix index (DigestSet) from the IDs.
  const ids = await store.images.ids();
  const probes = Array.from({ length: 20_000 }, (_, i) => ids[(i * 7919) % ids.length]!.slice(7, 19));
  let t = performance.now();
  await store.images.search(probes[0]!);
  const firstSearchMs = performance.now() - t;
  // Memory held by one open store (run with --expose-gc for exact numbers).
  (globalThis as { gc?: () => void }).gc?.();
  const mem = process.memoryUsage();
  for (const p of probes.slice(0, 2000)) await store.images.search(p); // warm-up
  const searchRuns: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    for (const p of probes) await store.images.search(p);
    searchRuns.push(((performance.now() - t) * 1000) / probes.length);
  }
  // Baseline: the same lookups on a bare in-memory DigestSet (no store, no refresh).
  const set = new DigestSet(ids);
  const setRuns: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t1 = performance.now();
    for (const p of probes) set.lookup(p);
    setRuns.push(((performance.now() - t1) * 1000) / probes.length);
  }
  // Resolve a tag (reference store), and resolve a short ID through the Docker lookup order.
  const refs = (await store.references.list()).map((r) => r.ref);
  t = performance.now();
  const RES = 20_000;
  for (let i = 0; i < RES; i++) await store.references.resolve(refs[i % refs.length]!);
  const resolveTagUs = ((performance.now() - t) * 1000) / RES;
  t = performance.now();
  for (let i = 0; i < RES; i++) await store.references.resolve(probes[i % probes.length]!);
  const resolveIdUs = ((performance.now() - t) * 1000) / RES;
  // heads()
  const headsRuns: number[] = [];
  let headCount = 0;
  for (let r = 0; r < 5; r++) {
    const t1 = performance.now();
    headCount = (await store.images.heads()).length;
    headsRuns.push(performance.now() - t1);
  }
  // get() of one image (reads and verifies its config blob).
  t = performance.now();
  for (let i = 0; i < 2000; i++) await store.images.get(ids[(i * 104729) % ids.length]!);
  const getUs = ((performance.now() - t) * 1000) / 2000;

  // Throughput on the big store, and on a fresh store on the real disk (fsync-bound).
  const TP = Number(process.env.BERTH_BENCH_THROUGHPUT ?? 300);
  const big = await throughput(store, TP, `tp${Date.now()}`);
  await store.close();
  const diskRoot = await fsp.mkdtemp(path.join(tmpdir(), "berth-bench-disk-"));
  const disk = await openStore({ root: diskRoot });
  await registerLayers(disk);
  const onDisk = await throughput(disk, Math.min(TP, 200), "disk");
  await disk.close();
  await fsp.rm(diskRoot, { recursive: true, force: true });

  const result = {
    images: count,
    root,
    metadataBytes: metaBytes,
    buildSeconds,
    openMs: median(opens.slice(1)),
    openFirstMs: opens[0],
    rssAfterOpen: mem.rss,
    rssGrowth: mem.rss - rssBefore,
    heapUsed: mem.heapUsed,
    firstSearchMs,
    searchUs: median(searchRuns),
    digestSetUs: median(setRuns),
    resolveTagUs,
    resolveShortIdUs: resolveIdUs,
    headsMs: median(headsRuns),
    heads: headCount,
    getUs,
    bigStore: big,
    disk: onDisk,
  };
  const lines = [
    `store: ${count} images, metadata ${mb(metaBytes)} (images/snapshot.log + journal.log), root ${root}`,
    `  open (restore)           median ${result.openMs.toFixed(0)} ms (first, cold: ${opens[0]!.toFixed(0)} ms)   target ≤ 2000 ms`,
    `  memory after open        rss ${mb(mem.rss)} (+${mb(result.rssGrowth)}), heap ${mb(mem.heapUsed)}${(globalThis as { gc?: unknown }).gc ? "" : " (run with --expose-gc for exact numbers)"}`,
    `  first search after open  ${firstSearchMs.toFixed(0)} ms (builds the prefix index)`,
    `  search 12-hex prefix     median ${result.searchUs.toFixed(2)} µs/lookup   target ≤ 20 µs`,
    `                           (bare DigestSet.lookup: ${result.digestSetUs.toFixed(2)} µs; the rest is the fstat refresh and the async call)`,
    `  resolve tag              ${resolveTagUs.toFixed(2)} µs/lookup`,
    `  resolve short ID         ${resolveIdUs.toFixed(2)} µs/lookup (tag lookup first, then prefix: Docker's order)`,
    `  heads()                  median ${result.headsMs.toFixed(1)} ms (${headCount} heads)`,
    `  get() (config read+hash) ${getUs.toFixed(0)} µs/image`,
    `  on the ${count}-image store (tmpfs): create ${big.createPerSec.toFixed(0)}/s, delete ${big.deletePerSec.toFixed(0)}/s, createMany ${big.createManyPerSec.toFixed(0)}/s`,
    `  fresh store on disk (fsync): create ${onDisk.createPerSec.toFixed(0)}/s, delete ${onDisk.deletePerSec.toFixed(0)}/s, createMany ${onDisk.createManyPerSec.toFixed(0)}/s`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  return result;
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] === self) {
  if (process.argv[2] === "--build-range") {
    const [root, start, end] = process.argv.slice(3);
    buildRange(root!, Number(start), Number(end)).catch((err: unknown) => {
      process.stderr.write(`builder: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
  } else {
    run(process.argv.slice(2)).catch((err: unknown) => {
      process.stderr.write(`bench store: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
  }
}
