/**
 * Registry-over-the-store benchmark (issue 13): `berth serve`'s `/v2/` (the
 * berth store behind it) against Debian's docker-registry (distribution 2.8),
 * both on loopback, the same blobs, alternated:
 *
 * - upload of a 256 MiB blob (POST, one PATCH, PUT), MB/s;
 * - GET of a 256 MiB blob by one client, MB/s, two ways as below;
 * - 16 concurrent downloads of it, aggregate MB/s, two ways: 16 clients × 3
 *   GETs from this (Node) process, which is itself the bottleneck (its CPU
 *   about equals the wall time, on the two cores the servers use), and 16
 *   connections GETting it over and over for BERTH_BENCH_WRK_SECONDS with wrk
 *   (C, reads into one buffer: the servers' own speed); the server's peak RSS
 *   while they download (VmHWM, reset through `/proc/PID/clear_refs` just
 *   before) — the issue's measure — and over the whole run;
 * - manifest GET by tag, 32 connections for 10 s with wrk: requests/s and p99.
 *
 *   node tools/bench/dist/serve-registry.js
 *
 * - `skopeo copy docker:// oci:` and `docker pull` of the registry bench's
 *   1 GiB image from each (see {@link imagePulls}).
 *
 * Environment: BERTH_BENCH_BLOB_MB (default 256), BERTH_BENCH_RUNS (default
 * 3), BERTH_BENCH_WRK_SECONDS (default 10), BERTH_BENCH_PULL_MB (default
 * 1024; 0 leaves the image pulls out), BERTH_BENCH_DIR (where the image is kept).
 * @module
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { median } from "./archive.js";
import { benchArchive } from "./bench-image.js";
import { timed } from "./registry.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../../..");
const cli = join(repoRoot, "apps/cli/dist/berth.js");
const peersDist = pathToFileURL(join(repoRoot, "tools/peers/dist/index.js")).href;

interface Target {
  name: string;
  url: string;
  pid: number;
}

/** A random blob file of `mb` MiB and its digest. */
function blobFile(path: string, mb: number): { path: string; digest: string; size: number } {
  const hash = createHash("sha256");
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < mb; i++) {
    randomFillSync(chunk);
    hash.update(chunk);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  // written back before it is read: the uploads' fsyncs then do not wait behind the bench's own dirty pages
  execFileSync("sync");
  return { path, digest: `sha256:${hash.digest("hex")}`, size: mb << 20 };
}

/** One HTTP request; resolves with status, headers and the body length (read with 1 MiB chunks, not kept). */
function http(method: string, url: string, opts: { body?: Readable | Buffer; headers?: Record<string, string | number> } = {}) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; bytes: number; text: string }>((ok, fail) => {
    const req = request(url, { method, headers: opts.headers ?? {}, agent: false }, (res) => {
      let bytes = 0;
      const small: Buffer[] = [];
      res.on("data", (c: Buffer) => {
        bytes += c.length;
        if (bytes < 64 << 10) small.push(c);
      });
      res.on("end", () => ok({ status: res.statusCode ?? 0, headers: res.headers, bytes, text: Buffer.concat(small).toString() }));
      res.on("error", fail);
    });
    req.on("error", fail);
    if (opts.body instanceof Readable) opts.body.pipe(req);
    else req.end(opts.body);
  });
}

/** POST, one PATCH with the whole blob, PUT ?digest=: the upload the issue measures. */
async function upload(t: Target, repo: string, blob: { path: string; digest: string; size: number }): Promise<number> {
  const start = performance.now();
  const post = await http("POST", `${t.url}/v2/${repo}/blobs/uploads/`, { headers: { "Content-Length": 0 } });
  if (post.status !== 202) throw new Error(`${t.name} POST: ${post.status} ${post.text}`);
  const loc = new URL(String(post.headers.location), t.url);
  const patch = await http("PATCH", loc.href, {
    body: createReadStream(blob.path, { highWaterMark: 1 << 20 }),
    headers: { "Content-Type": "application/octet-stream", "Content-Length": blob.size, "Content-Range": `0-${blob.size - 1}` },
  });
  if (patch.status !== 202) throw new Error(`${t.name} PATCH: ${patch.status} ${patch.text}`);
  const put = new URL(String(patch.headers.location), t.url);
  put.searchParams.set("digest", blob.digest);
  const done = await http("PUT", put.href, { headers: { "Content-Length": 0 } });
  if (done.status !== 201) throw new Error(`${t.name} PUT: ${done.status} ${done.text}`);
  return blob.size / 1e6 / ((performance.now() - start) / 1000);
}

/** `clients` × `each` GETs of the blob at once: aggregate MB/s. */
async function download(t: Target, repo: string, blob: { digest: string; size: number }, clients: number, each: number): Promise<number> {
  const start = performance.now();
  let total = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < each; i++) {
        const r = await http("GET", `${t.url}/v2/${repo}/blobs/${blob.digest}`);
        if (r.status !== 200 || r.bytes !== blob.size) throw new Error(`${t.name} GET: ${r.status}, ${r.bytes} bytes`);
        total += r.bytes;
      }
    }),
  );
  return total / 1e6 / ((performance.now() - start) / 1000);
}

/** Reset a process's peak RSS (VmHWM) to its current RSS (`clear_refs` 5; needs the same user or root). */
function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

/** Peak RSS of a process, MiB. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** A small artifact manifest over the blob, pushed by tag (an artifact: the blob is not a layer tar). */
async function pushManifest(t: Target, repo: string, blob: { digest: string; size: number }, dir: string): Promise<void> {
  const config = Buffer.from(JSON.stringify({ bench: true }));
  const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
  writeFileSync(join(dir, "config.json"), config);
  await upload(t, repo, { path: join(dir, "config.json"), digest: configDigest, size: config.length });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.berth.bench.config+json", digest: configDigest, size: config.length },
      layers: [{ mediaType: "application/octet-stream", digest: blob.digest, size: blob.size }],
    }),
  );
  const put = await http("PUT", `${t.url}/v2/${repo}/manifests/1`, { body: manifest, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json", "Content-Length": manifest.length } });
  if (put.status !== 201) throw new Error(`${t.name} manifest: ${put.status} ${put.text}`);
}

/** wrk with 32 connections for `seconds` on the manifest by tag: requests/s and p99 ms. */
function wrk(t: Target, repo: string, seconds: number): { rps: number; p99: number } {
  const out = execFileSync(
    "wrk",
    ["-t2", "-c32", `-d${seconds}s`, "--latency", "-H", "Accept: application/vnd.oci.image.manifest.v1+json", `${t.url}/v2/${repo}/manifests/1`],
    { encoding: "utf8" },
  );
  const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(out)?.[1]);
  const p = /99%\s+([0-9.]+)(us|ms|s)/.exec(out);
  const p99 = p ? Number(p[1]) * (p[2] === "us" ? 0.001 : p[2] === "s" ? 1000 : 1) : Number.NaN;
  return { rps, p99 };
}

/** wrk with `connections` for `seconds`, each GETting the blob over and over: aggregate MB/s (bytes read, 10^6). */
function wrkBlob(t: Target, repo: string, digest: string, seconds: number, connections: number): number {
  const threads = Math.min(2, connections);
  const out = execFileSync("wrk", [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, "--timeout", "60s", `${t.url}/v2/${repo}/blobs/${digest}`], { encoding: "utf8" });
  if (/Non-2xx|Socket errors/.test(out)) throw new Error(`${t.name}: wrk saw errors:\n${out}`);
  const m = /Transfer\/sec:\s+([0-9.]+)(KB|MB|GB)/.exec(out);
  if (!m) throw new Error(`${t.name}: no transfer rate in wrk's output:\n${out}`);
  return (Number(m[1]) * { KB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30 }[m[2] as "KB" | "MB" | "GB"]) / 1e6;
}

/** `berth serve` on a fresh store at a free port. */
async function startBerth(root: string, port: number): Promise<{ child: ChildProcess; target: Target }> {
  const child = spawn(process.execPath, [cli, "--root", root, "serve", "--port", String(port), "--log-format", "none"], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const ok = await http("GET", `${url}/v2/`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return { child, target: { name: "berth serve", url, pid: child.pid! } };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  throw new Error("berth serve did not start");
}

/**
 * The registry bench's image (`BERTH_BENCH_PULL_MB`, default 1 GiB, the same file as
 * `registry.js` makes) pushed into both servers by skopeo, then pulled from each,
 * alternated: `skopeo copy docker://… oci:` into a fresh directory and `docker pull`
 * (after `docker rmi -f`; the shared dockerd of `@berth/peers`). Prints a second table:
 * medians, berth's time ÷ the registry's (issue 13: ≤ 1, "no slower").
 */
async function imagePulls(targets: Target[], mb: number, runs: number): Promise<void> {
  const peers = (await import(peersDist)) as { dockerd(): Promise<{ env: NodeJS.ProcessEnv } | undefined> };
  const denv = process.env.DOCKER_HOST ? process.env : (await peers.dockerd())?.env;
  if (!denv) throw new Error("the image pulls need dockerd (@berth/peers could not start it)");
  const image = benchArchive(process.env.BERTH_BENCH_DIR ?? "/tmp/berth-bench-registry", mb);
  const host = (t: Target) => t.url.replace(/^https?:\/\//, "");
  const ref = (t: Target) => `${host(t)}/bench/pull:1`;
  const docker = (args: string[]) => execFileSync("/usr/bin/docker", args, { env: denv, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const dropImage = () => {
    try {
      docker(["rmi", "-f", image.id]);
    } catch {
      // not there
    }
  };
  for (const t of targets) execFileSync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `docker-archive:${image.file}`, `docker://${ref(t)}`]);
  const out = mkdtempSync(join(tmpdir(), "berth-bench-pull-"));
  const times = new Map<string, { skopeo: number[]; docker: number[] }>(targets.map((t) => [t.name, { skopeo: [], docker: [] }]));
  try {
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        const dir = join(out, "oci");
        rmSync(dir, { recursive: true, force: true });
        execFileSync("sync");
        const m = await timed("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${ref(t)}`, `oci:${dir}:bench`]);
        times.get(t.name)!.skopeo.push(m.seconds);
        rmSync(dir, { recursive: true, force: true });
      }
      for (const t of order) {
        dropImage();
        execFileSync("sync");
        const m = await timed("/usr/bin/docker", ["pull", ref(t)], denv);
        if (/Already exists/.test(m.stdout)) throw new Error(`docker pull from ${t.name} found layers already there`);
        const id = docker(["image", "inspect", "--format", "{{.Id}}", ref(t)]).trim();
        if (id !== image.id) throw new Error(`docker pull from ${t.name}: image ID ${id}, expected ${image.id}`);
        times.get(t.name)!.docker.push(m.seconds);
      }
      process.stdout.write(`pull round ${i + 1}: ${[...times].map(([n, x]) => `${n} skopeo ${x.skopeo.at(-1)!.toFixed(2)} s, docker ${x.docker.at(-1)!.toFixed(2)} s`).join("; ")}\n`);
    }
  } finally {
    dropImage();
    rmSync(out, { recursive: true, force: true });
  }
  const [b, r] = targets.map((t) => times.get(t.name)!) as [{ skopeo: number[]; docker: number[] }, { skopeo: number[]; docker: number[] }];
  process.stdout.write(`\n${mb} MiB bench image (${image.layers} layers), ${runs} alternated runs, medians, seconds\n\n`);
  process.stdout.write("| pull | from berth serve | from docker-registry | berth ÷ registry (time) |\n|---|---:|---:|---:|\n");
  for (const [key, label] of [
    ["skopeo", "skopeo copy docker:// oci:"],
    ["docker", "docker pull"],
  ] as const) {
    process.stdout.write(`| ${label} | ${median(b[key]).toFixed(2)} | ${median(r[key]).toFixed(2)} | ${(median(b[key]) / median(r[key])).toFixed(2)} |\n`);
  }
  process.stdout.write(`| server peak RSS after the pulls, MiB | ${peakRss(targets[0]!.pid).toFixed(0)} | ${peakRss(targets[1]!.pid).toFixed(0)} | |\n`);
}

/** Run the benchmark; prints a Markdown table. */
export async function run(): Promise<void> {
  const mb = Number(process.env.BERTH_BENCH_BLOB_MB ?? 256);
  const runs = Number(process.env.BERTH_BENCH_RUNS ?? 3);
  const seconds = Number(process.env.BERTH_BENCH_WRK_SECONDS ?? 10);
  const peers = (await import(peersDist)) as {
    registry(): Promise<{ url: string; pid: number; stop(): Promise<void> } | undefined>;
    freePort(): Promise<number>;
  };
  const dir = mkdtempSync(join(tmpdir(), "berth-bench-serve-registry-"));
  const reg = await peers.registry();
  if (!reg) throw new Error("docker-registry is not installed (apt-get install docker-registry)");
  const berth = await startBerth(join(dir, "store"), await peers.freePort());
  const targets: Target[] = [berth.target, { name: "docker-registry", url: reg.url, pid: reg.pid }];
  const rows = new Map<string, Record<string, number[]>>(targets.map((t) => [t.name, { upload: [], get1: [], wrk1: [], get16: [], wrk16: [], rss16: [], rps: [], p99: [] }]));
  const row = (t: Target) => rows.get(t.name)!;
  const wholeRss = new Map<string, number>();
  try {
    for (let i = 0; i < runs; i++) {
      const blob = blobFile(join(dir, `blob-${i}`), mb);
      // alternate which server goes first
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) row(t).upload!.push(await upload(t, `bench/r${i}`, blob));
      for (const t of order) row(t).get1!.push(await download(t, `bench/r${i}`, blob, 1, 1));
      for (const t of order) row(t).wrk1!.push(wrkBlob(t, `bench/r${i}`, blob.digest, seconds, 1));
      for (const t of order) {
        // the whole run's peak: what VmHWM held before this reset
        wholeRss.set(t.name, Math.max(wholeRss.get(t.name) ?? 0, peakRss(t.pid)));
        resetPeakRss(t.pid);
        row(t).get16!.push(await download(t, `bench/r${i}`, blob, 16, 3));
        row(t).wrk16!.push(wrkBlob(t, `bench/r${i}`, blob.digest, seconds, 16));
        row(t).rss16!.push(peakRss(t.pid));
      }
      if (i === 0) for (const t of targets) await pushManifest(t, "bench/r0", blob, dir);
      for (const t of order) {
        const w = wrk(t, "bench/r0", seconds);
        row(t).rps!.push(w.rps);
        row(t).p99!.push(w.p99);
      }
      rmSync(blob.path, { force: true });
    }
    const rss = new Map(targets.map((t) => [t.name, Math.max(wholeRss.get(t.name) ?? 0, peakRss(t.pid))]));
    const [b, r] = targets.map((t) => row(t)) as [Record<string, number[]>, Record<string, number[]>];
    const m = (xs: number[] | undefined) => median(xs ?? []);
    process.stdout.write(`\nblob ${mb} MiB, ${runs} alternated runs, medians; wrk -t2 -c32 -d${seconds}s\n\n`);
    process.stdout.write("| measure | berth serve | docker-registry | berth ÷ registry |\n|---|---:|---:|---:|\n");
    for (const [key, label] of [
      ["upload", "upload (POST, PATCH, PUT) MB/s"],
      ["get1", "blob GET, 1 client in this Node process, MB/s"],
      ["wrk1", `blob GET, 1 connection for ${seconds} s (wrk), MB/s`],
      ["get16", "blob GET, 16 clients × 3 from one Node process (client-bound), aggregate MB/s"],
      ["wrk16", `blob GET, 16 connections for ${seconds} s (wrk), aggregate MB/s`],
      ["rps", "manifest GET by tag, requests/s"],
      ["p99", "manifest GET p99 ms (lower is better)"],
    ] as const) {
      process.stdout.write(`| ${label} | ${m(b[key]).toFixed(1)} | ${m(r[key]).toFixed(1)} | ${(m(b[key]) / m(r[key])).toFixed(2)} |\n`);
    }
    process.stdout.write(`| peak RSS while 16 clients download (highest of the runs), MiB | ${Math.max(...b.rss16!).toFixed(0)} | ${Math.max(...r.rss16!).toFixed(0)} | |\n`);
    process.stdout.write(`| peak RSS over the whole run (uploads included), MiB | ${rss.get("berth serve")!.toFixed(0)} | ${rss.get("docker-registry")!.toFixed(0)} | |\n`);
    process.stdout.write(`\nEach run (${targets.map((t) => t.name).join(" / ")}):\n`);
    for (const key of ["upload", "get1", "wrk1", "get16", "wrk16"] as const)
      process.stdout.write(`- ${key}: ${b[key]!.map((x, i) => `${x.toFixed(0)} / ${r[key]![i]!.toFixed(0)}`).join(", ")}\n`);
    const pullMb = Number(process.env.BERTH_BENCH_PULL_MB ?? 1024);
    if (pullMb > 0) await imagePulls(targets, pullMb, runs);
  } finally {
    berth.child.kill("SIGTERM");
    await reg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
