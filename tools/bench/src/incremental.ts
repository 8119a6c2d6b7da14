/**
 * Incremental load benchmark (issue 14, "Beyond dockerd"): `berth docker push
 * app:1` — the command users type — of an app whose base the daemon already
 * has, into `berth serve` (the negotiated incremental load) and into dockerd
 * (berth lists the daemon's images), against `berth docker push --full`.
 * Reports bytes sent and wall time, alternated, medians of BERTH_BENCH_RUNS
 * (default 3).
 *
 *   node tools/bench/dist/incremental.js
 *
 * Environment: BERTH_BENCH_BASE_MB (the base layer, random bytes, default
 * 256), BERTH_BENCH_APP_MB (the app layer, default 1), BERTH_BENCH_RUNS.
 * @module
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomFillSync } from "node:crypto";
import { dockerEnv, median, sh } from "./archive.js";
import { serve, stop } from "./engine.js";

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, "../../../apps/cli/dist/berth.js");

/** `docker rmi -f` in the daemon of `env`; nothing when it has no such image. */
function rmi(ref: string, env: NodeJS.ProcessEnv): void {
  try {
    sh("/usr/bin/docker", ["rmi", "-f", ref], env);
  } catch {
    // not there
  }
}

/** `berth docker push --progress=json` of `ref` into the daemon of `env`: its summary and wall time. */
function push(store: string, ref: string, env: NodeJS.ProcessEnv, full: boolean): Promise<{ bytesSent: number; seconds: number; negotiated: boolean }> {
  const args = [cli, "--root", store, "docker", "push", "--progress=json", ...(full ? ["--full"] : []), ref];
  const start = performance.now();
  return new Promise((resolvePromise, reject) => {
    execFile(process.execPath, args, { env, maxBuffer: 64 << 20 }, (err, _stdout, stderr) => {
      if (err) return reject(new Error(`berth docker push: ${stderr}`));
      const summary = stderr
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { event?: string; bytesSent?: number; negotiated?: boolean })
        .find((e) => e.event === "summary");
      resolvePromise({ bytesSent: summary?.bytesSent ?? Number.NaN, seconds: (performance.now() - start) / 1000, negotiated: summary?.negotiated === true });
    });
  });
}

/** Run the benchmark; prints a Markdown table. */
export async function run(): Promise<void> {
  const baseMb = Number(process.env.BERTH_BENCH_BASE_MB ?? 256);
  const appMb = Number(process.env.BERTH_BENCH_APP_MB ?? 1);
  const runs = Number(process.env.BERTH_BENCH_RUNS ?? 3);
  const dir = mkdtempSync(join(tmpdir(), "berth-bench-incremental-"));
  const env = dockerEnv();
  try {
    const store = join(dir, "store");
    const files = (name: string, mb: number) => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, `${name}.bin`), randomFillSync(Buffer.alloc(mb << 20)));
      writeFileSync(join(d, "run.txt"), `${process.pid} ${Date.now()}\n`); // new to the shared dockerd each run
      return d;
    };
    const berth = (args: string[]) => sh(process.execPath, [cli, "--root", store, ...args]);
    const tag = `berth-bench/incremental-${process.pid}`;
    berth(["import", files("base", baseMb), "-t", `${tag}-base:1`]);
    berth(["import", files("app", appMb), "--base", `${tag}-base:1`, "-t", `${tag}:1`]);
    const socket = join(dir, "berth.sock");
    const server = await serve(join(dir, "served"), socket);
    const served = { ...env, DOCKER_HOST: `unix://${socket}` };
    type Row = { bytesSent: number; seconds: number };
    const rows: Record<"serve" | "dockerd" | "full", Row[]> = { serve: [], dockerd: [], full: [] };
    try {
      // both daemons get the base first
      await push(store, `${tag}-base:1`, served, false);
      await push(store, `${tag}-base:1`, env, false);
      for (let i = 0; i < runs; i++) {
        for (const [key, target] of [["serve", served], ["dockerd", env]] as const) {
          // the app goes from the daemon each time, so each push sends it anew
          rmi(`${tag}:1`, target);
          const r = await push(store, `${tag}:1`, target, false);
          if (key === "serve" && !r.negotiated) throw new Error("the push to berth serve did not negotiate");
          rows[key].push(r);
        }
        rmi(`${tag}:1`, served);
        rows.full.push(await push(store, `${tag}:1`, served, true));
      }
    } finally {
      await stop(server);
      for (const t of [`${tag}:1`, `${tag}-base:1`]) rmi(t, env);
    }
    const mb = (n: number) => (n / 1e6).toFixed(2);
    process.stdout.write(`\nbase ${baseMb} MiB, app ${appMb} MiB (random bytes); ${runs} alternated runs, medians\n\n`);
    process.stdout.write("| berth docker push app:1 into | bytes sent MB | s |\n|---|---:|---:|\n");
    for (const [key, label] of [
      ["serve", "berth serve (negotiated: base present)"],
      ["dockerd", "dockerd (images listed: base present)"],
      ["full", "berth serve with --full"],
    ] as const) {
      const r = rows[key];
      process.stdout.write(`| ${label} | ${mb(median(r.map((x) => x.bytesSent)))} | ${median(r.map((x) => x.seconds)).toFixed(2)} |\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
