/**
 * Layer store benchmark (@berth/layer-store):
 *
 * - `register` of one large gzip layer read from a file (stores the blob,
 *   computes blob digest and DiffID in one pass, fsyncs), against the same work
 *   done by coreutils in the same run: `tee` into a file, `gzip -dc | sha256sum`,
 *   `sha256sum`, `sync` of the file;
 * - `register` of many small layers one after another (lock + fsync bound);
 * - `gc` sweeping those small layers, and `fsck` of the large one.
 *
 *   npx tsc -p tools/bench/tsconfig.build.json && node tools/bench/dist/layer-store.js
 *   BERTH_BENCH_LAYER_MB=256 BERTH_BENCH_SMALL_LAYERS=2000 node tools/bench/dist/layer-store.js
 */
import { execFileSync } from "node:child_process";
import { createReadStream, promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { openLayerStore } from "@berth/layer-store";

const MB = 1 << 20;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function pseudoRandom(seed: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** A gzip layer of about `mb` MiB of tar: half incompressible, half text. */
async function makeLayer(dir: string, mb: number): Promise<string> {
  const file = path.join(dir, `layer-${mb}.tar.gz`);
  try {
    await fsp.access(file);
    return file;
  } catch {}
  const half = (mb * MB) / 2;
  const text = Buffer.from("berth benchmark compressible text line 0123456789 the quick brown fox\n".repeat(Math.ceil(half / 70))).subarray(0, half);
  const tar = Buffer.concat([Buffer.from(pseudoRandom(7, half)), text]);
  await fsp.writeFile(file, gzipSync(tar, { level: 6 }));
  return file;
}

/** One row of results. */
export interface LayerBenchRow {
  op: string;
  tool: string;
  median: number;
  unit: string;
  runs: number;
  note?: string;
}

async function timeIt(runs: number, fn: (i: number) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    out.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return out;
}

/** Run the benchmark and print a table; returns the rows. */
export async function run(_args: string[] = []): Promise<LayerBenchRow[]> {
  const mb = Number(process.env.BERTH_BENCH_LAYER_MB ?? 64);
  const smallCount = Number(process.env.BERTH_BENCH_SMALL_LAYERS ?? 300);
  const runs = Number(process.env.BERTH_BENCH_RUNS ?? 5);
  const work = await fsp.mkdtemp(path.join(tmpdir(), "berth-bench-layers-"));
  const rows: LayerBenchRow[] = [];
  try {
    const layer = await makeLayer(work, mb);
    const blobMiB = (await fsp.stat(layer)).size / MB;

    // berth: register from a file stream, fresh store each run.
    const berth = await timeIt(runs, async (i) => {
      const store = await openLayerStore({ root: path.join(work, `store-${i}`) });
      await store.register(createReadStream(layer, { highWaterMark: 1 << 20 }));
    });
    rows.push({ op: `register ${mb} MiB tar (gzip ${blobMiB.toFixed(1)} MiB)`, tool: "berth", median: median(berth), unit: "s", runs });

    // coreutils doing the same work: copy, blob digest, DiffID, fsync.
    const coreutils = await timeIt(runs, async (i) => {
      const copy = path.join(work, `copy-${i}`);
      execFileSync("sh", ["-c", `tee "${copy}" < "${layer}" | gzip -dc | sha256sum >/dev/null && sha256sum "${copy}" >/dev/null && sync "${copy}"`]);
    });
    rows.push({
      op: rows[0]!.op,
      tool: "coreutils (tee, gzip -dc | sha256sum, sha256sum, sync)",
      median: median(coreutils),
      unit: "s",
      runs,
      note: `berth/coreutils time ratio ${(median(berth) / median(coreutils)).toFixed(2)}`,
    });

    // fsck of the store holding the large layer (re-hash + decompress).
    const fsckStore = await openLayerStore({ root: path.join(work, "store-0") });
    const fsck = await timeIt(runs, async () => {
      const r = await fsckStore.fsck();
      if (!r.ok) throw new Error(`fsck found problems: ${JSON.stringify(r.problems)}`);
    });
    rows.push({ op: `fsck (${blobMiB.toFixed(1)} MiB blob, ${mb} MiB tar)`, tool: "berth", median: median(fsck), unit: "s", runs });

    // Many small layers, one at a time (each: ingest fsync, lock, link, dir fsync, record write).
    const small = await openLayerStore({ root: path.join(work, "small") });
    let parent: string | null = null;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < smallCount; i++) {
      const l = await small.register([pseudoRandom(1000 + i, 8192)], parent);
      parent = i % 10 === 9 ? null : l.chainID;
    }
    const smallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    rows.push({ op: `register ${smallCount} layers of 8 KiB`, tool: "berth", median: smallCount / smallSeconds, unit: "layers/s", runs: 1 });

    const g0 = process.hrtime.bigint();
    const gc = await small.gc();
    const gcSeconds = Number(process.hrtime.bigint() - g0) / 1e9;
    if (gc.removedLayers.length !== smallCount) throw new Error(`gc removed ${gc.removedLayers.length} of ${smallCount} layers`);
    rows.push({ op: `gc sweeping ${smallCount} layers + blobs`, tool: "berth", median: gcSeconds * 1000, unit: "ms", runs: 1 });
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
  for (const r of rows) {
    process.stdout.write(`${r.op.padEnd(44)} ${r.tool.padEnd(56)} ${r.median.toFixed(3).padStart(10)} ${r.unit}${r.note ? `  (${r.note})` : ""}\n`);
  }
  return rows;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  run(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
