/**
 * Registry benchmark (issue 15, first part): push and pull of a ~1 GiB image
 * between an OCI layout and Debian's docker-registry (distribution 2.8, on
 * loopback), berth (`@berth/registry`'s copyImage, in a child process of its
 * own) against `skopeo copy` of the same, alternated, reported as ratios with
 * peak RSS. Also the second push of the unchanged image (HEADs only).
 *
 *   npx -y pnpm@10.34.8 build && node tools/bench/dist/registry.js
 *
 * Environment: BERTH_BENCH_REGISTRY_MB (image size, default 1024),
 * BERTH_BENCH_RUNS (runs per tool and operation, default 3),
 * BERTH_BENCH_SETTLE (seconds of quiet before every run, default 2),
 * BERTH_BENCH_DIR (work dir, default /tmp/berth-bench-registry; the image
 * layout is kept there between runs). Every tool runs under `/usr/bin/time`;
 * each push goes to a fresh registry (nothing to mount from earlier runs).
 * @module
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createGzip } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../../..");
const registryDist = pathToFileURL(join(repoRoot, "packages/registry/dist/index.js")).href;
const peersDist = pathToFileURL(join(repoRoot, "tools/peers/dist/index.js")).href;

interface Measure {
  seconds: number;
  maxRssKiB: number;
}

function timed(cmd: string, args: string[]): Promise<Measure> {
  return new Promise((ok, fail) => {
    execFile("/usr/bin/time", ["-f", "BENCH %e %M", cmd, ...args], { maxBuffer: 64 << 20 }, (err, _out, stderr) => {
      if (err) return fail(new Error(`${cmd} ${args.join(" ")} failed: ${stderr.slice(-2000)}`));
      const m = /BENCH ([0-9.]+) ([0-9]+)\s*$/.exec(stderr);
      if (!m) return fail(new Error(`no timing from /usr/bin/time: ${stderr.slice(-500)}`));
      ok({ seconds: Number(m[1]), maxRssKiB: Number(m[2]) });
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

/** One gzip (level 0: random data does not compress) tar layer of one file; returns digest, size and DiffID. */
async function writeLayer(dir: string, index: number, bytes: number): Promise<{ digest: string; size: number; diffId: string }> {
  const header = Buffer.alloc(512);
  header.write(`data-${index}.bin`, 0);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${bytes.toString(8).padStart(11, "0")}\0`, 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const tarHash = createHash("sha256");
  const blobHash = createHash("sha256");
  let size = 0;
  const tmp = join(dir, "blobs", "sha256", `layer-${index}.tmp`);
  const gz = createGzip({ level: 0 });
  const out = createWriteStream(tmp);
  gz.on("data", (c: Buffer) => {
    blobHash.update(c);
    size += c.length;
  });
  gz.pipe(out);
  const feed = async (b: Buffer) => {
    tarHash.update(b);
    if (!gz.write(b)) await new Promise((r) => gz.once("drain", r));
  };
  await feed(header);
  for (let left = bytes; left > 0; left -= 1 << 20) await feed(randomBytes(Math.min(left, 1 << 20)));
  await feed(Buffer.alloc(1024 + ((512 - (bytes % 512)) % 512)));
  gz.end();
  await new Promise<void>((r) => out.once("close", () => r()));
  const digest = `sha256:${blobHash.digest("hex")}`;
  renameSync(tmp, join(dir, "blobs", "sha256", digest.slice(7)));
  return { digest, size, diffId: `sha256:${tarHash.digest("hex")}` };
}

function writeBlob(dir: string, bytes: Buffer): { digest: string; size: number } {
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  writeFileSync(join(dir, "blobs", "sha256", digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/** The bench image as an OCI layout (made once, kept in the work dir). */
async function benchLayout(dir: string, mb: number): Promise<{ dir: string; bytes: number }> {
  const marker = join(dir, "done.json");
  if (existsSync(marker)) return JSON.parse(readFileSync(marker, "utf8")) as { dir: string; bytes: number };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  const layerCount = 8;
  const layers = [];
  for (let i = 0; i < layerCount; i++) layers.push(await writeLayer(dir, i, Math.floor((mb << 20) / layerCount)));
  const config = writeBlob(dir, Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) }, history: layers.map(() => ({ created_by: "bench" })) })));
  const manifest = writeBlob(
    dir,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: l.digest, size: l.size })),
      }),
    ),
  );
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": "bench" } }] }),
  );
  const result = { dir, bytes: layers.reduce((n, l) => n + l.size, 0) + config.size };
  writeFileSync(marker, JSON.stringify(result));
  return result;
}

const CHILD = `
const [dist, op, a, b] = process.argv.slice(2);
const { RegistryClient, OciLayout, copyImage, layoutSource, layoutDestination, registrySource, registryDestination } = await import(dist);
const client = new RegistryClient();
if (op === "push") {
  await copyImage(layoutSource(await OciLayout.open(a), "bench"), registryDestination(client.repository(b, { push: true })), { tag: "bench" });
} else {
  const [repo, tag] = a.split(/:(?=[^:/]+$)/);
  await copyImage(registrySource(client.repository(repo), tag), layoutDestination(await OciLayout.open(b, { create: true })), { tag: "bench" });
}
await client.close();
`;

/** One result row. */
export interface RegistryBenchRow {
  op: "push" | "pull" | "re-push";
  tool: string;
  medianSeconds: number;
  mbPerSecond: number;
  peakRssMiB: number;
  runs: number;
}

/** Run the benchmark; prints a Markdown table and returns the rows. */
export async function run(): Promise<RegistryBenchRow[]> {
  const mb = Number(process.env.BERTH_BENCH_REGISTRY_MB ?? 1024);
  const runs = Number(process.env.BERTH_BENCH_RUNS ?? 3);
  const settle = Number(process.env.BERTH_BENCH_SETTLE ?? 2);
  const work = process.env.BERTH_BENCH_DIR ?? "/tmp/berth-bench-registry";
  mkdirSync(work, { recursive: true });
  const peers = (await import(peersDist)) as {
    requirePeer(name: string): Promise<string | undefined>;
    registry(): Promise<{ host: string; stop(): Promise<void> } | undefined>;
  };
  const skopeo = await peers.requirePeer("skopeo");
  if (!skopeo) throw new Error("the registry bench needs skopeo");
  const child = join(work, "berth-copy.mjs");
  writeFileSync(child, CHILD);
  process.stdout.write(`registry bench: ${mb} MiB image, ${runs} runs per tool, a fresh docker-registry per run\n`);
  const image = await benchLayout(join(work, `image-${mb}mb`), mb);
  const times: Record<string, Measure[]> = {};
  const add = (k: string, m: Measure) => (times[k] ??= []).push(m);
  for (let i = 0; i < runs; i++) {
    // tools alternate, and which goes first alternates too; each gets an empty registry, so
    // nothing is mounted from an earlier run (skopeo keeps a blob-info cache of its own)
    for (const tool of i % 2 === 0 ? ["berth", "skopeo"] : ["skopeo", "berth"]) {
      const reg = await peers.registry();
      if (!reg) throw new Error("the registry bench needs docker-registry");
      try {
        const repo = `${reg.host}/bench/${tool}`;
        const out = join(work, `pulled-${tool}`);
        rmSync(out, { recursive: true, force: true });
        await sleep(settle);
        if (tool === "berth") {
          add("push berth", await timed(process.execPath, [child, registryDist, "push", image.dir, repo]));
          await sleep(settle);
          add("re-push berth", await timed(process.execPath, [child, registryDist, "push", image.dir, repo]));
          await sleep(settle);
          add("pull berth", await timed(process.execPath, [child, registryDist, "pull", `${repo}:bench`, out]));
        } else {
          add("push skopeo", await timed(skopeo, ["copy", "--quiet", "--dest-tls-verify=false", `oci:${image.dir}:bench`, `docker://${repo}:bench`]));
          await sleep(settle);
          add("pull skopeo", await timed(skopeo, ["copy", "--quiet", "--src-tls-verify=false", `docker://${repo}:bench`, `oci:${out}:bench`]));
        }
        rmSync(out, { recursive: true, force: true });
      } finally {
        await reg.stop();
      }
    }
  }
  const rows: RegistryBenchRow[] = Object.entries(times).map(([k, ms]) => {
    const [op, tool] = k.split(" ") as [RegistryBenchRow["op"], string];
    const s = median(ms.map((m) => m.seconds));
    return { op, tool, medianSeconds: s, mbPerSecond: image.bytes / (1 << 20) / s, peakRssMiB: Math.max(...ms.map((m) => m.maxRssKiB)) / 1024, runs: ms.length };
  });
  const lines = ["| op | tool | median s | MB/s | berth × faster | peak RSS MiB |", "|---|---|---|---|---|---|"];
  for (const r of rows) {
    const berth = rows.find((x) => x.op === r.op && x.tool === "berth");
    const ratio = r.tool === "berth" || !berth ? "" : (r.medianSeconds / berth.medianSeconds).toFixed(2);
    lines.push(`| ${r.op} | ${r.tool} | ${r.medianSeconds.toFixed(2)} | ${r.op === "re-push" ? "-" : r.mbPerSecond.toFixed(0)} | ${ratio} | ${r.peakRssMiB.toFixed(0)} |`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  run().catch((err: unknown) => {
    process.stderr.write(`registry bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
