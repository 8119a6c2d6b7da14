/**
 * Unpack benchmark (issue 16): an image's root filesystem written into a
 * directory by
 *
 * - `berth unpack IMAGE DIR` (the command users type, node start-up included),
 * - the library call `unpackImage` in a child process of its own,
 * - `umoci unpack --image <store root>:<ref>` (the store is an OCI layout),
 * - `docker create` + `docker export | tar -x` (dockerd 20.10, vfs),
 *
 * alternated round-robin, each under `/usr/bin/time` (wall time, peak RSS),
 * `sync` before every run. The image is the archive suite's (busybox + 30 %
 * random, 25 % text, 7.5 % as ~4 KiB files, 20 % random, 15 % text, built by
 * the classic builder), loaded into a berth store from `docker save`.
 *
 * Then the snapshotter: the committed snapshot of the image's ChainID made by
 * `ensureChainSnapshot` (each layer prepared on the one below, applied,
 * committed), and `prepare` of a writable snapshot on it — on btrfs a
 * snapshot of the parent's subvolume, elsewhere a copy of the whole tree
 * (`copyTree`: GNU `cp -a --reflink=auto`, a reflink where the file system
 * has them, else an in-kernel copy) — as a % of the extraction.
 *
 *   npx -y pnpm@10.34.8 build && node tools/bench/dist/unpack.js
 *   BERTH_BENCH_UNPACK_MB=1024 BERTH_BENCH_RUNS=3 node tools/bench/dist/unpack.js
 *
 * Environment: BERTH_BENCH_UNPACK_MB (image size, default 256: under two
 * minutes here once the image is built), BERTH_BENCH_RUNS (3), BERTH_BENCH_DIR
 * (/tmp/berth-bench-unpack), DOCKER_HOST (else the shared test dockerd is started),
 * BERTH_BENCH_REFLINK=1: the store, the snapshots and every tool's output on an
 * XFS file system with reflinks (`mountReflinkFs` of `@berth/peers`, as root),
 * where `prepare` clones instead of copying; BERTH_BENCH_REFLINK=btrfs: the
 * same on btrfs, where `prepare` is a subvolume snapshot.
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ensureChainSnapshot, openSnapshotter } from "@berth/cache";
import { openStore } from "@berth/image-store";
import { unpackImage } from "@berth/image-service";
import { mountReflinkFs } from "@berth/peers";
import { buildImage, dockerEnv, median, sh, timed } from "./archive.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../../..");
const DOCKER = "/usr/bin/docker";

/** One line of results. */
export interface UnpackBenchRow {
  tool: string;
  medianSeconds: number;
  runs: number[];
  peakRssMiB: number;
  /** Median CPU seconds (user + system) of the runs; 0 where not measured. */
  cpuSeconds: number;
}

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** Run the benchmark; prints a table and returns the rows. */
export async function run(): Promise<UnpackBenchRow[]> {
  const mb = Number(process.env.BERTH_BENCH_UNPACK_MB ?? 256);
  const runs = Number(process.env.BERTH_BENCH_RUNS ?? 3);
  const dir = process.env.BERTH_BENCH_DIR ?? "/tmp/berth-bench-unpack";
  const rm = (p: string) => rmSync(p, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const env = dockerEnv();
  const tag = buildImage(env, dir, mb);
  let work = dir;
  let unmount = async () => {};
  const reflink = process.env.BERTH_BENCH_REFLINK;
  const fsName = reflink === "btrfs" ? "btrfs" : reflink === "1" ? "XFS with reflinks" : undefined;
  if (fsName) {
    const fs = await mountReflinkFs(join(dir, "reflink"), { sizeMiB: mb * 8 + 1024, type: reflink === "btrfs" ? "btrfs" : "xfs" });
    if ("skipped" in fs) throw new Error(`BERTH_BENCH_REFLINK=${reflink}: ${fs.skipped}`);
    ({ dir: work, unmount } = fs);
  }
  const storeRoot = join(work, "store");
  const cli = join(repoRoot, "apps/cli/dist/berth.js");
  const self = fileURLToPath(import.meta.url);
  rm(storeRoot);
  const archive = join(dir, "docker.tar");
  sh(DOCKER, ["save", "-o", archive, tag], env);
  sh(process.execPath, [cli, "--root", storeRoot, "--progress", "none", "load", "-i", archive]);
  rm(archive);
  const ref = `docker.io/${tag}`;
  const out = join(work, "out");
  const theirs = join(work, "bundle");

  const tools: Array<{ tool: string; before: () => void; cmd: () => [string, string[]]; after?: () => void }> = [
    { tool: "berth unpack (CLI)", before: () => rm(out), cmd: () => [process.execPath, [cli, "--root", storeRoot, "--progress", "none", "unpack", tag, out]] },
    { tool: "unpackImage (library, child process)", before: () => rm(out), cmd: () => [process.execPath, [self, "child", storeRoot, tag, out]] },
    { tool: "umoci unpack", before: () => rm(theirs), cmd: () => ["umoci", ["unpack", "--image", `${storeRoot}:${ref}`, theirs]] },
    {
      tool: "docker create + export | tar -x",
      before: () => {
        rm(out);
        mkdirSync(out);
      },
      cmd: () => ["sh", ["-c", `id=$(${DOCKER} create ${tag} /none) && ${DOCKER} export "$id" | tar -C ${out} -xf - && ${DOCKER} rm "$id" >/dev/null`]],
    },
  ];
  const ms = tools.map(() => [] as Array<{ seconds: number; maxRssKiB: number; user: number; sys: number }>);
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < tools.length; k++) {
      const j = (i + k) % tools.length;
      const t = tools[j]!;
      t.before();
      execFileSync("sync");
      const [c, a] = t.cmd();
      ms[j]!.push(await timed(c, a, env));
    }
  }
  rm(out);
  rm(theirs);
  const rows: UnpackBenchRow[] = tools.map((t, j) => ({
    tool: t.tool,
    medianSeconds: median(ms[j]!.map((m) => m.seconds)),
    runs: ms[j]!.map((m) => m.seconds),
    peakRssMiB: Math.max(...ms[j]!.map((m) => m.maxRssKiB)) / 1024,
    cpuSeconds: median(ms[j]!.map((m) => m.user + m.sys)),
  }));

  // the snapshotter: extraction of the chain into committed snapshots, then prepare on the top one
  const store = await openStore({ root: storeRoot });
  const snaps = await openSnapshotter({ root: storeRoot });
  const id = await store.references.resolve(tag);
  const chainID = (await store.images.get(id)).chainID!;
  execFileSync("sync");
  const ensure = await seconds(() => ensureChainSnapshot(store, snaps, chainID));
  const prep: number[] = [];
  let tool = "";
  for (let i = 0; i < runs; i++) {
    execFileSync("sync");
    prep.push(await seconds(() => snaps.prepare(`bench-${i}`, chainID)));
    tool = snaps.lastClone?.tool ?? "";
    await snaps.remove(`bench-${i}`);
  }
  const usage = await snaps.usage(chainID);
  await store.close();
  rm(storeRoot);
  await unmount();
  rows.push(
    { tool: "ensureChainSnapshot (extract into committed snapshots)", medianSeconds: ensure, runs: [ensure], peakRssMiB: 0, cpuSeconds: 0 },
    { tool: "prepare on the extracted top snapshot (clone)", medianSeconds: median(prep), runs: prep, peakRssMiB: 0, cpuSeconds: 0 },
  );

  const of = (prefix: string) => rows.find((r) => r.tool.startsWith(prefix))!.medianSeconds;
  process.stdout.write(`${fsName ? `on ${fsName}: ` : ""}image ${tag}: ${mb} MB, snapshot ${(usage.size / 2 ** 20).toFixed(0)} MiB on disk, ${usage.inodes} inodes; ${runs} runs\n`);
  for (const r of rows) {
    const extra = r.peakRssMiB ? `${r.peakRssMiB.toFixed(0).padStart(5)} MiB  cpu ${r.cpuSeconds.toFixed(2).padStart(6)} s` : " ".repeat(23);
    process.stdout.write(`${r.tool.padEnd(56)} ${r.medianSeconds.toFixed(2).padStart(7)} s  ${extra}  runs ${r.runs.map((x) => x.toFixed(2)).join(" / ")}\n`);
  }
  const umoci = of("umoci");
  process.stdout.write(`umoci / berth CLI: ${(umoci / of("berth unpack")).toFixed(2)}×, umoci / library: ${(umoci / of("unpackImage")).toFixed(2)}×, docker / berth CLI: ${(of("docker") / of("berth unpack")).toFixed(2)}×\n`);
  process.stdout.write(
    `prepare: ${((100 * median(prep)) / of("unpackImage")).toFixed(1)} % of the library unpack, ${((100 * median(prep)) / ensure).toFixed(1)} % of ensureChainSnapshot (copied by ${tool})\n`,
  );
  return rows;
}

/** Child mode: `unpack.js child <root> <ref> <dir>` — the library call in a process of its own. */
async function child([root, ref, dir]: string[]): Promise<void> {
  const store = await openStore({ root: root! });
  try {
    await unpackImage(store, ref!, dir!);
  } finally {
    await store.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const main = process.argv[2] === "child" ? child(process.argv.slice(3)) : run().then(() => undefined);
  main.catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
