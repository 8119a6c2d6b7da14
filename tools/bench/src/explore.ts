/**
 * Image explorer benchmark (issue 18): the first read of a layer of many
 * small files into its file tree (`layerTree`, nothing cached), for the same
 * layer stored uncompressed and as gzip, against in the same run:
 *
 * - "before": the tree as it was built until the header walk — every entry
 *   through `readTar` (tar-stream) with each file body hashed (SHA-256),
 *   reproduced here as it was in `layertree.ts`;
 * - GNU tar listing the same blob: `tar -tvf` (uncompressed) and `tar -tzvf`
 *   (gzip) to /dev/null — the peer's cost of the same listing;
 * - the cached read (second look: one JSON file).
 *
 * Runs alternate (before, after, tar, …) so a noisy machine hits all alike;
 * medians and ratios are printed.
 *
 *   npx -y pnpm@10.34.8 build && node tools/bench/dist/explore.js
 *   BERTH_BENCH_FILES=30000 BERTH_BENCH_RUNS=5 node tools/bench/dist/explore.js
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { digestHex } from "@berth/digest";
import { readTar, TAR_TRAILER_SIZE, tarHeader, tarPadding } from "@berth/docker-archive";
import { openStore, type Store } from "@berth/image-store";
import { LAYER_TREE_CACHE_DIR, layerTree } from "@berth/image-service";

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const WORDS = "the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three".split(" ");

/** Text of `size` bytes, words picked by a xorshift generator from `seed` (gzip takes it to about a third). */
function text(seed: number, size: number): Buffer {
  let x = seed >>> 0 || 1;
  const out: string[] = [];
  let n = 0;
  while (n <= size) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const w = WORDS[x % WORDS.length]!;
    out.push(w);
    n += w.length + 1;
  }
  return Buffer.from(out.join(" ")).subarray(0, size);
}

/** A layer tar of `count` text files (1–8 KiB, ~4.5 KiB on average) in directories of 100. */
function makeLayerTar(count: number): Buffer {
  const parts: Uint8Array[] = [];
  for (let d = 0; d < Math.ceil(count / 100); d++) {
    parts.push(tarHeader({ name: `usr/share/bench/d${d}/`, type: "directory" }));
  }
  for (let i = 0; i < count; i++) {
    const size = 1024 + ((i * 2654435761) % 7168);
    const body = text(i + 1, size);
    parts.push(tarHeader({ name: `usr/share/bench/d${Math.floor(i / 100)}/file-${i}.txt`, type: "file", size }), body, tarPadding(size));
  }
  parts.push(new Uint8Array(TAR_TRAILER_SIZE));
  return Buffer.concat(parts);
}

/** The tree as it was read before the header walk: readTar, every file body hashed. */
async function treeBefore(store: Store, chainID: string): Promise<number> {
  const stream = await store.layers.openUncompressed(chainID);
  let n = 0;
  try {
    for await (const e of readTar(stream)) {
      if (e.type === "file") {
        const h = createHash("sha256");
        for await (const chunk of e.body()) h.update(chunk);
        h.digest("hex");
      }
      n++;
    }
  } finally {
    stream.destroy();
  }
  return n;
}

async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** One row of results. */
export interface ExploreBenchRow {
  layer: string;
  tool: string;
  median: number;
  runs: number[];
}

/** Run the benchmark and print a table; returns the rows. */
export async function run(_args: string[] = []): Promise<ExploreBenchRow[]> {
  const count = Number(process.env.BERTH_BENCH_FILES ?? 30_000);
  const runs = Number(process.env.BERTH_BENCH_RUNS ?? 5);
  const work = await fsp.mkdtemp(path.join(tmpdir(), "berth-bench-explore-"));
  const rows: ExploreBenchRow[] = [];
  try {
    const tar = makeLayerTar(count);
    const gz = gzipSync(tar, { level: 6 });
    const store = await openStore({ root: path.join(work, "store") });
    const files = { none: path.join(work, "layer.tar"), gzip: path.join(work, "layer.tar.gz") };
    await fsp.writeFile(files.none, tar);
    await fsp.writeFile(files.gzip, gz);
    // the same tar twice would be one layer (one DiffID): stack the gzip one on the first
    const plain = await store.layers.register([tar]);
    const zipped = await store.layers.register([gz], plain.chainID);
    process.stdout.write(`layer: ${count} files, tar ${(tar.length / 2 ** 20).toFixed(1)} MiB, gzip ${(gz.length / 2 ** 20).toFixed(1)} MiB\n`);
    for (const [kind, layer] of [
      ["uncompressed", plain],
      ["gzip", zipped],
    ] as const) {
      const cacheFile = path.join(store.root, LAYER_TREE_CACHE_DIR, `${digestHex(layer.diffID)}.json`);
      const tarArgs = kind === "gzip" ? ["-tzvf", files.gzip] : ["-tvf", files.none];
      const t = { before: [] as number[], after: [] as number[], cached: [] as number[], tar: [] as number[] };
      for (let i = 0; i < runs; i++) {
        t.before.push(await timed(() => treeBefore(store, layer.chainID)));
        await fsp.rm(cacheFile, { force: true });
        let entries = 0;
        t.after.push(
          await timed(async () => {
            entries = (await layerTree(store, layer.chainID)).entries.length;
          }),
        );
        if (entries !== count + Math.ceil(count / 100)) throw new Error(`layerTree read ${entries} entries`);
        t.cached.push(await timed(() => layerTree(store, layer.chainID)));
        t.tar.push(await timed(() => execFileSync("tar", tarArgs, { stdio: ["ignore", "ignore", "inherit"] })));
      }
      rows.push(
        { layer: kind, tool: "before: readTar + SHA-256 of each body", median: median(t.before), runs: t.before },
        { layer: kind, tool: "after: layerTree, first read (header walk)", median: median(t.after), runs: t.after },
        { layer: kind, tool: "after: layerTree, cached", median: median(t.cached), runs: t.cached },
        { layer: kind, tool: `GNU tar ${tarArgs[0]}`, median: median(t.tar), runs: t.tar },
      );
    }
    await store.close();
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
  for (const kind of ["uncompressed", "gzip"]) {
    const of = (prefix: string) => rows.find((r) => r.layer === kind && r.tool.startsWith(prefix))!.median;
    for (const r of rows.filter((x) => x.layer === kind)) {
      process.stdout.write(`${r.layer.padEnd(13)} ${r.tool.padEnd(44)} ${r.median.toFixed(3).padStart(8)} s   runs ${r.runs.map((x) => x.toFixed(3)).join(" / ")}\n`);
    }
    process.stdout.write(`${kind.padEnd(13)} first read: ${(of("before") / of("after: layerTree, first")).toFixed(1)}× faster than before, ${(of("after: layerTree, first") / of("GNU tar")).toFixed(2)}× GNU tar's time\n`);
  }
  return rows;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  run(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
