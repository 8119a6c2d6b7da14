/**
 * Engine API benchmark (issue 14): the stock docker CLI's `docker load -i` and
 * `docker save -o` of the archive bench's ~1 GiB image against `berth serve`
 * (a fresh store per load) and against dockerd (the shared test daemon, image
 * removed before each load), alternated, 3 runs each by default.
 *
 *   node tools/bench/dist/engine.js
 *
 * Environment: BERTH_BENCH_ARCHIVE_MB (default 1024), BERTH_BENCH_RUNS (3),
 * BERTH_BENCH_SETTLE (seconds of quiet before each run, 5), BERTH_BENCH_DIR
 * (default /tmp/berth-bench-archive, shared with the archive suite's image).
 * @module
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildImage, dockerEnv, median, sh, timed } from "./archive.js";

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, "../../../apps/cli/dist/main.js");
const DOCKER = "/usr/bin/docker";

/** `berth serve` on a socket over `root`; resolves once it answers. */
async function serve(root: string, socket: string): Promise<ChildProcess> {
  rmSync(socket, { force: true });
  const child = spawn(process.execPath, [cli, "--root", root, "serve", "--port", "0", "--socket", socket, "--log-format", "none"], { stdio: "ignore" });
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(socket)) throw new Error("berth serve did not start");
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/** Run the benchmark; prints a Markdown table. */
export async function run(): Promise<void> {
  const mb = Number(process.env.BERTH_BENCH_ARCHIVE_MB ?? 1024);
  const runs = Number(process.env.BERTH_BENCH_RUNS ?? 3);
  const settle = String(Number(process.env.BERTH_BENCH_SETTLE ?? 5));
  const dir = process.env.BERTH_BENCH_DIR ?? "/tmp/berth-bench-archive";
  mkdirSync(dir, { recursive: true });
  const env = dockerEnv();
  const tag = buildImage(env, dir, mb);
  const archive = join(dir, "engine-in.tar");
  if (!existsSync(archive)) execFileSync(DOCKER, ["save", "-o", archive, tag], { env });
  const out = join(dir, "engine-out.tar");
  const root = join(dir, "engine-store");
  const socket = join(dir, "berth.sock");
  const berthEnv = { ...env, DOCKER_HOST: `unix://${socket}` };
  const times: Record<string, number[]> = { "load berth": [], "load dockerd": [], "save berth": [], "save dockerd": [] };
  const quiet = () => {
    execFileSync("sync");
    execFileSync("sleep", [settle]);
    execFileSync("sh", ["-c", 'cat "$1" > /dev/null', "sh", archive]);
  };
  for (let i = 0; i < runs; i++) {
    for (const who of i % 2 ? ["dockerd", "berth"] : ["berth", "dockerd"]) {
      let server: ChildProcess | undefined;
      if (who === "berth") {
        rmSync(root, { recursive: true, force: true });
        server = await serve(root, socket);
      } else sh(DOCKER, ["rmi", "-f", tag], env);
      const e = who === "berth" ? berthEnv : env;
      try {
        quiet();
        times[`load ${who}`]!.push((await timed(DOCKER, ["load", "-q", "-i", archive], e)).seconds);
        rmSync(out, { force: true });
        quiet();
        times[`save ${who}`]!.push((await timed(DOCKER, ["save", "-o", out, tag], e)).seconds);
      } finally {
        if (server) await stop(server);
      }
    }
  }
  rmSync(out, { force: true });
  rmSync(root, { recursive: true, force: true });
  const bytes = statSync(archive).size;
  const lines = [
    `docker CLI (${DOCKER}) against berth serve and dockerd; archive ${(bytes / 1e6).toFixed(0)} MB; medians of ${runs} alternated runs.`,
    "",
    "| command | berth serve s | dockerd s | berth × faster |",
    "|---|---:|---:|---:|",
  ];
  for (const op of ["load", "save"]) {
    const b = median(times[`${op} berth`]!);
    const d = median(times[`${op} dockerd`]!);
    lines.push(`| docker ${op} ${op === "load" ? "-i" : "-o"} | ${b.toFixed(2)} | ${d.toFixed(2)} | ${(d / b).toFixed(2)} |`);
  }
  console.error(JSON.stringify(times));
  console.log(lines.join("\n"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
