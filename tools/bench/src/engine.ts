/**
 * Engine API benchmark (issue 14): the stock docker CLI's `docker load -i` and
 * `docker save -o` of the archive bench's ~1 GiB image against `berth serve`
 * (a fresh store per load) and against dockerd (the shared test daemon, image
 * removed before each load), alternated, 3 runs each by default.
 *
 *   node tools/bench/dist/engine.js
 *
 * Then dockerode's `loadImage` + `followProgress` and `getImage().get()` of the
 * same archive, and `docker images` with BERTH_BENCH_MANY_IMAGES (default
 * 1000) small images loaded into both (removed from dockerd afterwards).
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
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { makeTar } from "@berth/image-store/tar-fixture";
import Docker from "dockerode";
import { buildImage, dockerEnv, median, sh, timed } from "./archive.js";

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, "../../../apps/cli/dist/berth.js");
const DOCKER = "/usr/bin/docker";

/** `berth serve` on a socket over `root`; resolves once it answers. */
export async function serve(root: string, socket: string): Promise<ChildProcess> {
  rmSync(socket, { force: true });
  const child = spawn(process.execPath, [cli, "--root", root, "serve", "--port", "0", "--socket", socket, "--log-format", "none"], { stdio: "ignore" });
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(socket)) throw new Error("berth serve did not start");
  return child;
}

/** SIGTERM a server and wait for it to exit. */
export async function stop(child: ChildProcess): Promise<void> {
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
  const { performance } = await import("node:perf_hooks");
  const quiet = () => {
    execFileSync("sync");
    execFileSync("sleep", [settle]);
    execFileSync("sh", ["-c", 'cat "$1" > /dev/null', "sh", archive]);
  };
  const parts = new Set((process.env.BERTH_BENCH_ENGINE_PARTS ?? "cli,dockerode,images").split(","));
  /** `runs` alternated rounds; each runs `fn` against a fresh berth serve store and against dockerd without the image. */
  const alternate = async (fn: (who: "berth" | "dockerd") => Promise<void>) => {
    for (let i = 0; i < runs; i++) {
      for (const who of i % 2 ? (["dockerd", "berth"] as const) : (["berth", "dockerd"] as const)) {
        let server: ChildProcess | undefined;
        if (who === "berth") {
          rmSync(root, { recursive: true, force: true });
          server = await serve(root, socket);
        } else sh(DOCKER, ["rmi", "-f", tag], env);
        try {
          await fn(who);
        } finally {
          if (server) await stop(server);
        }
      }
    }
  };
  if (parts.has("cli")) {
    await alternate(async (who) => {
      const e = who === "berth" ? berthEnv : env;
      quiet();
      times[`load ${who}`]!.push((await timed(DOCKER, ["load", "-q", "-i", archive], e)).seconds);
      rmSync(out, { force: true });
      quiet();
      times[`save ${who}`]!.push((await timed(DOCKER, ["save", "-o", out, tag], e)).seconds);
    });
  }
  // dockerode: loadImage + followProgress, getImage().get() drained
  if (parts.has("dockerode")) {
    await alternate(async (who) => {
      const d = new Docker({ socketPath: who === "berth" ? socket : (env.DOCKER_HOST ?? "").replace(/^unix:\/\//, "") });
      quiet();
      let t = performance.now();
      const stream = await d.loadImage(archive);
      await new Promise((res, rej) => d.modem.followProgress(stream, (err: Error | null) => (err ? rej(err) : res(undefined))));
      (times[`dockerode load ${who}`] ??= []).push((performance.now() - t) / 1000);
      quiet();
      t = performance.now();
      for await (const _ of await d.getImage(tag).get()) {
        // drained
      }
      (times[`dockerode get ${who}`] ??= []).push((performance.now() - t) / 1000);
    });
  }
  rmSync(out, { force: true });
  rmSync(root, { recursive: true, force: true });

  // docker images with many images in both
  const n = Number(process.env.BERTH_BENCH_MANY_IMAGES ?? 1000);
  if (parts.has("images")) {
    const many = join(dir, `many-${n}.tar`);
    writeFileSync(many, manyImages(n));
    rmSync(root, { recursive: true, force: true });
    const server = await serve(root, socket);
    try {
      execFileSync(DOCKER, ["load", "-q", "-i", many], { env: berthEnv, stdio: "ignore" });
      execFileSync(DOCKER, ["load", "-q", "-i", many], { env, stdio: "ignore" });
      for (let i = 0; i < Math.max(runs, 5); i++) {
        for (const who of i % 2 ? ["dockerd", "berth"] : ["berth", "dockerd"]) {
          (times[`images ${who}`] ??= []).push((await timed(DOCKER, ["images"], who === "berth" ? berthEnv : env)).seconds);
        }
      }
    } finally {
      await stop(server);
      const tags = Array.from({ length: n }, (_, i) => `berth-bench/many:${i}`);
      for (let i = 0; i < tags.length; i += 200) sh(DOCKER, ["rmi", "-f", ...tags.slice(i, i + 200)], env);
      rmSync(root, { recursive: true, force: true });
      rmSync(many, { force: true });
    }
  }

  const bytes = statSync(archive).size;
  const lines = [
    `docker CLI (${DOCKER}) against berth serve and dockerd; archive ${(bytes / 1e6).toFixed(0)} MB; medians of ${runs} alternated runs.`,
    "",
    "| command | berth serve s | dockerd s | berth × faster |",
    "|---|---:|---:|---:|",
  ];
  const rows: Array<[string, string]> = [
    ["docker load -i", "load"],
    ["docker save -o", "save"],
    ["dockerode loadImage + followProgress", "dockerode load"],
    ["dockerode getImage().get()", "dockerode get"],
    [`docker images (${n} images)`, "images"],
  ];
  for (const [label, key] of rows) {
    if (!times[`${key} berth`]?.length) continue;
    const b = median(times[`${key} berth`]!);
    const d = median(times[`${key} dockerd`]!);
    lines.push(`| ${label} | ${b.toFixed(2)} | ${d.toFixed(2)} | ${(d / b).toFixed(2)} |`);
  }
  console.error(JSON.stringify(times));
  console.log(lines.join("\n"));
}

/** A docker-save archive of `n` one-layer images tagged `berth-bench/many:<i>`. */
export function manyImages(n: number): Uint8Array {
  const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
  const files: Record<string, Uint8Array | string> = {};
  const manifest: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const layer = makeTar({ [`file-${i}`]: `image ${i}\n` });
    const diff = sha(layer);
    const config = JSON.stringify({
      architecture: "amd64",
      os: "linux",
      created: new Date(Date.UTC(2020, 0, 1) + i * 1000).toISOString(),
      config: { Labels: { n: String(i) } },
      rootfs: { type: "layers", diff_ids: [`sha256:${diff}`] },
      history: [{ created_by: `image ${i}` }],
    });
    files[`${diff}/layer.tar`] = layer;
    files[`${sha(config)}.json`] = config;
    manifest.push({ Config: `${sha(config)}.json`, RepoTags: [`berth-bench/many:${i}`], Layers: [`${diff}/layer.tar`] });
  }
  files["manifest.json"] = JSON.stringify(manifest);
  return makeTar(files);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
