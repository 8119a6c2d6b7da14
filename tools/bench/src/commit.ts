/**
 * Commit benchmark (issue 16): a ~10% change of a root filesystem committed
 * as one new layer on its base image —
 *
 * - `berth commit DIR --base IMAGE -t NEW` (the CLI, a fresh process each run);
 * - `commitDirectory(store, …)` of `@berth/image-service` (the library call,
 *   in this process, on an open store);
 * - `umoci repack --image LAYOUT:NEW BUNDLE` of the same change, in a bundle
 *   `umoci unpack` made from a berth-saved OCI image of the same base
 *   (`berth save --format oci`, extracted).
 *
 * The base rootfs: 64 KiB files of random bytes, 64 per directory. Both
 * edited trees start as umoci's unpack (berth's is a `cp -a` of it: same
 * modes, owners, mtimes) and get the same change: of every 10th file, one in
 * ten removed and the others rewritten (new bytes, same size), a new
 * directory with 1% more files. Runs alternate (cli, library, umoci, the order rotating each round);
 * medians and ratios are printed. Setup reads the base layer's file list
 * once (`berth diff`; cached per DiffID under the store, as any first commit,
 * diff or explore of that base would), as umoci's unpack wrote its mtree;
 * both costs are printed, outside the timed runs.
 *
 *   npx -y pnpm@10.34.8 build && node tools/bench/dist/commit.js
 *   BERTH_BENCH_COMMIT_MB=1024 BERTH_BENCH_RUNS=3 node tools/bench/dist/commit.js
 *
 * Environment: BERTH_BENCH_COMMIT_MB (rootfs size, default 256),
 * BERTH_BENCH_RUNS (runs per tool, default 3), BERTH_BENCH_DIR (work dir,
 * default a temp dir, removed after).
 */
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { openStore } from "@berth/image-store";
import { commitDirectory } from "@berth/image-service";
import { median, sh, timed } from "./archive.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../../..");
const FILE = 64 << 10;
const PER_DIR = 64;

/** A pool of random bytes files are cut from (offsets differ, so no two files share bytes at gzip's window distance). */
const pool = randomBytes(8 << 20);
const slice = (i: number) => pool.subarray((i * 7919 * 64) % (pool.length - FILE), ((i * 7919 * 64) % (pool.length - FILE)) + FILE);

function makeRootfs(dir: string, files: number): void {
  for (let i = 0; i < files; i++) {
    const d = join(dir, "data", `d${Math.floor(i / PER_DIR)}`);
    if (i % PER_DIR === 0) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}.bin`), slice(i));
  }
  mkdirSync(join(dir, "etc"), { recursive: true });
  writeFileSync(join(dir, "etc", "hostname"), "bench\n");
}

/** The same ~10% change, applied to a tree. */
function change(dir: string, files: number): void {
  for (let i = 0; i < files; i++) {
    const p = join(dir, "data", `d${Math.floor(i / PER_DIR)}`, `f${i}.bin`);
    if (i % 100 === 50) rmSync(p);
    else if (i % 10 === 0) writeFileSync(p, slice(i + 1_000_003));
  }
  mkdirSync(join(dir, "data", "new"));
  for (let i = 0; i < Math.ceil(files / 100); i++) writeFileSync(join(dir, "data", "new", `n${i}.bin`), slice(i + 2_000_003));
  writeFileSync(join(dir, "etc", "hostname"), "bench-edited\n");
}

/** One row of results. */
export interface CommitBenchRow {
  tool: string;
  median: number;
  runs: number[];
}

/** Run the benchmark and print a table; returns the rows. */
export async function run(_args: string[] = []): Promise<CommitBenchRow[]> {
  const mb = Number(process.env.BERTH_BENCH_COMMIT_MB ?? 256);
  const runs = Number(process.env.BERTH_BENCH_RUNS ?? 3);
  const files = Math.max(PER_DIR, Math.round((mb << 20) / FILE));
  const work = process.env.BERTH_BENCH_DIR ?? mkdtempSync(join(tmpdir(), "berth-bench-commit-"));
  mkdirSync(work, { recursive: true });
  const cli = join(repoRoot, "apps/cli/dist/berth.js");
  const root = join(work, "store");
  const berth = (args: string[]) => sh(process.execPath, [cli, "--root", root, "-q", ...args]);
  try {
    process.stdout.write(`commit bench: ${files} files of 64 KiB (${mb} MiB), ~10% changed; ${runs} runs each, alternating\n`);
    const src = join(work, "src");
    makeRootfs(src, files);
    berth(["import", src, "bench/base:1"]);
    berth(["save", "--format", "oci", "-o", join(work, "base-oci.tar"), "bench/base:1"]);
    const layout = join(work, "layout");
    mkdirSync(layout);
    sh("tar", ["-xf", join(work, "base-oci.tar"), "-C", layout]);
    rmSync(join(work, "base-oci.tar"));
    rmSync(src, { recursive: true });
    const bundle = join(work, "bundle");
    const unpack = await timed("umoci", ["unpack", "--image", `${layout}:1`, bundle]);
    const edit = join(work, "edit");
    cpSync(join(bundle, "rootfs"), edit, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    change(edit, files);
    change(join(bundle, "rootfs"), files);
    // berth's counterpart of the mtree umoci wrote at unpack: the base layer's file list, read once and cached per DiffID
    const warm = await timed(process.execPath, [cli, "--root", root, "-q", "diff", "--layer", "0", "bench/base:1"]);
    process.stdout.write(`setup done (umoci unpack ${unpack.seconds.toFixed(1)} s; berth's first read of the base layer's file list ${warm.seconds.toFixed(1)} s, cached after)\n`);

    const store = await openStore({ root });
    const times: Record<string, number[]> = { "berth commit (CLI)": [], "commitDirectory (library)": [], "umoci repack": [] };
    const rss: Record<string, number[]> = { "berth commit (CLI)": [], "umoci repack": [] };
    try {
      const tools: Array<[string, (r: number) => Promise<number>]> = [
        [
          "berth commit (CLI)",
          async (r) => {
            const c = await timed(process.execPath, [cli, "--root", root, "-q", "commit", edit, "--base", "bench/base:1", "-t", `bench/cli:${r}`]);
            rss["berth commit (CLI)"]!.push(c.maxRssKiB);
            return c.seconds;
          },
        ],
        [
          "commitDirectory (library)",
          async (r) => {
            const t = process.hrtime.bigint();
            await commitDirectory(store, { dir: edit, base: "bench/base:1", tags: [`bench/lib:${r}`] });
            return Number(process.hrtime.bigint() - t) / 1e9;
          },
        ],
        [
          "umoci repack",
          async (r) => {
            const u = await timed("umoci", ["repack", "--image", `${layout}:new${r}`, bundle]);
            rss["umoci repack"]!.push(u.maxRssKiB);
            return u.seconds;
          },
        ],
      ];
      for (let r = 0; r < runs; r++) {
        // the order rotates, so none is always first after the other's writes
        const order = [...tools.slice(r % tools.length), ...tools.slice(0, r % tools.length)];
        const line: string[] = [];
        for (const [name, fn] of order) {
          const s = await fn(r);
          times[name]!.push(s);
          line.push(`${name} ${s.toFixed(2)} s`);
        }
        process.stdout.write(`run ${r + 1}: ${line.join(", ")}\n`);
      }
    } finally {
      await store.close();
    }
    const diff = berth(["diff", "--layer", "-1", "bench/cli:0"]).split("\n").filter(Boolean);
    const count = (k: string) => diff.filter((l) => l.startsWith(k)).length;
    process.stdout.write(`the layer: ${count("A")} added, ${count("C")} changed, ${count("D")} removed paths\n`);
    const rows = Object.entries(times).map(([tool, xs]) => ({ tool, median: median(xs), runs: xs }));
    const umoci = rows.find((r) => r.tool === "umoci repack")!.median;
    process.stdout.write(`\n| tool | median s | runs | umoci ÷ tool | peak RSS MiB |\n|---|---|---|---|---|\n`);
    for (const r of rows) {
      const m = rss[r.tool] ? `${Math.round(median(rss[r.tool]!) / 1024)}` : "—";
      process.stdout.write(`| ${r.tool} | ${r.median.toFixed(2)} | ${r.runs.map((x) => x.toFixed(2)).join(", ")} | ${(umoci / r.median).toFixed(2)}× | ${m} |\n`);
    }
    return rows;
  } finally {
    if (!process.env.BERTH_BENCH_DIR) rmSync(work, { recursive: true, force: true });
    else if (!process.env.BERTH_BENCH_KEEP) for (const n of readdirSync(work)) rmSync(join(work, n), { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  run().catch((err: unknown) => {
    process.stderr.write(`bench commit: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
