/**
 * Archive benchmark (issue 4): berth save/load of a ~1 GiB image against
 * `docker save` / `docker load`, skopeo, `podman load`, `cp` + sync and
 * `openssl dgst -sha256`, side by side in one run.
 *
 *   npx tsc -p tools/bench/tsconfig.build.json && node tools/bench/dist/archive.js
 *
 * Environment: BERTH_BENCH_ARCHIVE_MB (image size, default 1024),
 * BERTH_BENCH_RUNS (runs per tool, default 3), BERTH_BENCH_SETTLE (seconds
 * of quiet before every run, default 5), BERTH_BENCH_GROUP_SETTLE (seconds of
 * quiet before each group of tools, default 30: the group before may have
 * written tens of GB), BERTH_BENCH_DIR (work dir,
 * default /tmp/berth-bench-archive), DOCKER_HOST (else the shared test dockerd
 * is started with tools/peers), BERTH_BENCH_DAEMONS=0 (skip the docker load /
 * podman load group). Every tool runs under `/usr/bin/time` (wall time and
 * peak RSS). berth runs twice over: as a child process calling
 * `@berth/image-service` (the library rows) and as the `berth` command users
 * type (`berth load -i`, `berth save -o`), side by side in the same rotation.
 * @module
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../../..");
const DOCKER = "/usr/bin/docker";

interface Measure {
  seconds: number;
  maxRssKiB: number;
  /** CPU seconds in user space and in the kernel. */
  user: number;
  sys: number;
}

/** Run a command under /usr/bin/time; returns wall seconds and peak RSS. */
export function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Measure> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      "/usr/bin/time",
      ["-f", "BENCH %e %M %U %S", cmd, ...args],
      { env, maxBuffer: 64 << 20 },
      (err, _stdout, stderr) => {
        if (err) {
          reject(new Error(`${cmd} ${args.join(" ")} failed: ${stderr.slice(-2000)}`));
          return;
        }
        const m = /BENCH ([0-9.]+) ([0-9]+) ([0-9.]+) ([0-9.]+)\s*$/.exec(stderr);
        if (!m) {
          reject(new Error(`no timing from /usr/bin/time: ${stderr.slice(-500)}`));
          return;
        }
        resolvePromise({ seconds: Number(m[1]), maxRssKiB: Number(m[2]), user: Number(m[3]), sys: Number(m[4]) });
      },
    );
  });
}

export function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 }).toString();
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export function dockerEnv(): NodeJS.ProcessEnv {
  if (process.env.DOCKER_HOST) return process.env;
  const cli = join(repoRoot, "tools/peers/dist/cli.js");
  const out = sh(process.execPath, [cli, "start"]);
  const m = /export DOCKER_HOST=(\S+)/.exec(out);
  if (!m) throw new Error(`could not start dockerd: ${out}`);
  return { ...process.env, DOCKER_HOST: m[1] };
}

export function buildImage(env: NodeJS.ProcessEnv, dir: string, mb: number): string {
  const tag = `berth-bench/archive:${mb}mb`;
  if (sh(DOCKER, ["images", "-q", tag], env).trim()) return tag;
  const base = "berth-bench/busybox:1";
  if (!sh(DOCKER, ["images", "-q", base], env).trim()) {
    const rootfs = join(dir, "rootfs");
    rmSync(rootfs, { recursive: true, force: true });
    mkdirSync(join(rootfs, "bin"), { recursive: true });
    mkdirSync(join(rootfs, "tmp"));
    execFileSync("cp", ["/bin/busybox", join(rootfs, "bin/busybox")]);
    for (const a of ["sh", "head", "yes", "base64", "awk", "mkdir", "cat", "rm", "ls", "true"])
      symlinkSync("busybox", join(rootfs, "bin", a));
    execFileSync("sh", ["-c", `tar -C ${rootfs} -c . | ${DOCKER} import - ${base}`], { env });
  }
  const MB = 1 << 20;
  const r1 = Math.round(mb * 0.3) * MB;
  const t1 = Math.round(mb * 0.25) * MB;
  const small = Math.round(mb * 0.075) * MB; // base64 → ×4/3, 4 KiB files
  const r2 = Math.round(mb * 0.2) * MB;
  const t2 = Math.round(mb * 0.15) * MB;
  const text = "berth benchmark compressible text line 0123456789 the quick brown fox jumps over the lazy dog";
  const ctx = join(dir, "ctx");
  mkdirSync(ctx, { recursive: true });
  writeFileSync(
    join(ctx, "Dockerfile"),
    [
      `FROM ${base}`,
      `RUN head -c ${r1} /dev/urandom > /random1.bin`,
      `RUN yes "${text}" | head -c ${t1} > /text1.txt`,
      // ~4 KiB text files (54 lines of 77 bytes each).
      `RUN mkdir /many && cd /many && head -c ${small} /dev/urandom | base64 | awk '{ f = sprintf("f%06d", int(NR / 54)); print > f; if (NR % 54 == 53) close(f) }'`,
      `RUN head -c ${r2} /dev/urandom > /random2.bin`,
      `RUN yes "${text} 2" | head -c ${t2} > /text2.txt`,
      "",
    ].join("\n"),
  );
  execFileSync(DOCKER, ["build", "-q", "-t", tag, ctx], { env: { ...env, DOCKER_BUILDKIT: "0" }, stdio: "ignore" });
  return tag;
}

/** One line of results. */
export interface ArchiveBenchRow {
  op: "save" | "load";
  tool: string;
  medianSeconds: number;
  mbPerSecond: number;
  peakRssMiB: number;
  runs: number;
  note?: string;
}

/** Results of {@link run}. */
export interface ArchiveBenchResult {
  archiveBytes: number;
  imageMB: number;
  layers: number;
  rows: ArchiveBenchRow[];
}

/** Run the benchmark; prints a Markdown table and returns the rows. */
export async function run(): Promise<ArchiveBenchResult> {
  const mb = Number(process.env.BERTH_BENCH_ARCHIVE_MB ?? 1024);
  const runs = Number(process.env.BERTH_BENCH_RUNS ?? 3);
  const settle = Number(process.env.BERTH_BENCH_SETTLE ?? 5);
  const groupSettle = Number(process.env.BERTH_BENCH_GROUP_SETTLE ?? 30);
  const dir = process.env.BERTH_BENCH_DIR ?? "/tmp/berth-bench-archive";
  mkdirSync(dir, { recursive: true });
  const env = dockerEnv();
  const tag = buildImage(env, dir, mb);
  const dockerTar = join(dir, "docker.tar");
  const out = join(dir, "out.tar");
  const self = fileURLToPath(import.meta.url);
  const rows: ArchiveBenchRow[] = [];
  const rm = (p: string) => rmSync(p, { recursive: true, force: true });
  const cli = join(repoRoot, "apps/cli/dist/berth.js");
  const berthCmd = (root: string, ...args: string[]): [string, string[]] => [process.execPath, [cli, "--root", root, "--progress", "none", ...args]];

  /** One tool of a group: how to prepare a run, the command, the bytes it counts. */
  interface Tool {
    tool: string;
    bytes: () => number;
    before: () => void;
    cmd: () => [string, string[]];
    runs: number;
    note?: string;
  }

  /**
   * Run a group of tools round-robin: round i runs each tool once (those with
   * runs left), starting at a different tool each round, so a slow stretch of
   * the machine falls on all of them alike rather than on one tool's block.
   * Before every run: the tool's own cleanup, `sync`, and the `warm` inputs
   * read once (so every tool starts with its input in the page cache).
   */
  const group = async (op: "save" | "load", tools: Tool[], warm: string[] = []) => {
    const ms = tools.map(() => [] as Measure[]);
    const size = tools.map(() => 0);
    const rounds = Math.max(...tools.map((t) => t.runs));
    execFileSync("sync");
    if (groupSettle > 0) execFileSync("sleep", [String(groupSettle)]);
    for (let i = 0; i < rounds; i++) {
      for (let k = 0; k < tools.length; k++) {
        const j = (i + k) % tools.length;
        const t = tools[j]!;
        if (ms[j]!.length >= t.runs) continue;
        t.before();
        execFileSync("sync");
        // Let the disk settle: podman's vfs store writes ~4 GB per load, and
        // whatever runs next (berth load, which writes fastest, most) pays for
        // that I/O still draining for seconds after it returned.
        if (settle > 0) execFileSync("sleep", [String(settle)]);
        // Inputs in the page cache for every run: docker and podman write
        // gigabytes between the runs of a round, which can evict them.
        for (const w of warm) execFileSync("sh", ["-c", 'find "$1" -type f -exec cat {} + > /dev/null', "sh", w]);
        const [c, a] = t.cmd();
        ms[j]!.push(await timed(c, a, env));
        size[j] = t.bytes();
      }
    }
    tools.forEach((t, j) => {
      const secs = median(ms[j]!.map((m) => m.seconds));
      const row: ArchiveBenchRow = {
        op,
        tool: t.tool,
        medianSeconds: secs,
        mbPerSecond: size[j]! / 1e6 / secs,
        peakRssMiB: Math.max(...ms[j]!.map((m) => m.maxRssKiB)) / 1024,
        runs: t.runs,
        ...(t.note ? { note: t.note } : {}),
      };
      rows.push(row);
      const each = ms[j]!.map((m) => `${m.seconds.toFixed(2)} (${m.user.toFixed(2)}u ${m.sys.toFixed(2)}s)`).join(" ");
      console.error(`${op} ${t.tool}: ${secs.toFixed(2)} s, ${row.mbPerSecond.toFixed(0)} MB/s, ${row.peakRssMiB.toFixed(0)} MiB (runs in order: ${each})`);
    });
  };

  // ---- save (docker save first, alone: its output is the input of everything else)
  const size = () => statSync(out).size;
  const dockerSave: Tool = { tool: "docker save", bytes: size, before: () => rm(out), cmd: () => [DOCKER, ["save", "-o", out, tag]], runs, note: "client RSS; the daemon does the work" };
  await group("save", [dockerSave]);
  execFileSync("cp", [out, dockerTar]);
  const archiveBytes = statSync(dockerTar).size;
  const storeRoot = join(dir, "store");
  rm(storeRoot);
  sh(process.execPath, [self, "child", "load", storeRoot, dockerTar]);
  await group("save", [
    { tool: "berth save (library)", bytes: size, before: () => rm(out), cmd: () => [process.execPath, [self, "child", "save", storeRoot, tag, out]], runs },
    { tool: "berth save -o (CLI)", bytes: size, before: () => rm(out), cmd: () => berthCmd(storeRoot, "save", "-o", out, tag), runs },
    {
      tool: "skopeo docker-archive→docker-archive",
      bytes: size,
      before: () => rm(out),
      cmd: () => ["skopeo", ["--insecure-policy", "copy", "-q", `docker-archive:${dockerTar}`, `docker-archive:${out}:${tag}`]],
      runs,
    },
    { tool: "cp + sync", bytes: size, before: () => rm(out), cmd: () => ["sh", ["-c", `cp ${dockerTar} ${out} && sync`]], runs },
  ], [dockerTar, join(storeRoot, "blobs")]);

  // ---- load (MB/s of the docker save archive read)
  const inBytes = () => archiveBytes;
  const loadRoot = join(dir, "load-store");
  const ociDir = join(dir, "oci");
  const podmanRoot = join(dir, "podman");
  const skopeoOci = (gzip: boolean) => [
    "skopeo",
    ["--insecure-policy", "copy", "-q", ...(gzip ? [] : ["--dest-oci-accept-uncompressed-layers"]), `docker-archive:${dockerTar}`, `oci:${ociDir}:x`],
  ] as [string, string[]];
  // berth, skopeo and openssl take turns; the daemons' loads run in a rotation
  // of their own (below). dockerd's and podman's vfs stores write several GB
  // per load, and the disk is still busy with that long after they return
  // (longer than the settle time): whichever tool came next paid for it, most
  // of all berth load, which fsyncs what it stores and so waits for the disk.
  await group("load", [
    { tool: "berth load (library)", bytes: inBytes, before: () => rm(loadRoot), cmd: () => [process.execPath, [self, "child", "load", loadRoot, dockerTar]], runs },
    { tool: "berth load -i (CLI)", bytes: inBytes, before: () => rm(loadRoot), cmd: () => berthCmd(loadRoot, "load", "-i", dockerTar), runs },
    { tool: "skopeo docker-archive→oci (uncompressed)", bytes: inBytes, before: () => rm(ociDir), cmd: () => skopeoOci(false), runs },
    {
      tool: "skopeo docker-archive→oci (uncompressed) + sync",
      bytes: inBytes,
      before: () => rm(ociDir),
      cmd: () => ["sh", ["-c", `"$@" && sync`, "sh", ...skopeoOci(false).flat()]],
      runs,
      note: "on disk when it returns, as berth's blobs are (fsync)",
    },
    { tool: "skopeo docker-archive→oci (gzip)", bytes: inBytes, before: () => rm(ociDir), cmd: () => skopeoOci(true), runs: Math.min(runs, 1) },
    { tool: "openssl dgst -sha256", bytes: inBytes, before: () => {}, cmd: () => ["openssl", ["dgst", "-sha256", dockerTar]], runs },
  ], [dockerTar]);
  if (process.env.BERTH_BENCH_DAEMONS !== "0") await group("load", [
    {
      tool: "docker load",
      bytes: inBytes,
      before: () => execFileSync(DOCKER, ["rmi", tag], { env, stdio: "ignore" }),
      cmd: () => [DOCKER, ["load", "-q", "-i", dockerTar]],
      runs,
      note: "client RSS; the daemon does the work",
    },
    {
      tool: "podman load",
      bytes: inBytes,
      before: () => rm(podmanRoot),
      cmd: () => ["podman", ["--root", join(podmanRoot, "root"), "--runroot", join(podmanRoot, "run"), "--storage-driver", "vfs", "load", "-q", "-i", dockerTar]],
      runs,
    },
  ], [dockerTar]);
  rm(out);
  rm(ociDir);
  rm(podmanRoot);
  rm(loadRoot);

  const layers = JSON.parse(sh(DOCKER, ["image", "inspect", tag], env))[0].RootFS.Layers.length as number;
  const result = { archiveBytes, imageMB: mb, layers, rows };
  console.log(toMarkdown(result));
  return result;
}

/** Format results as a Markdown table with ratios to berth. */
export function toMarkdown(r: ArchiveBenchResult): string {
  const lines = [
    `Image: ${r.layers} layers, docker save archive ${(r.archiveBytes / 1e6).toFixed(0)} MB.`,
    "",
    "| op | tool | median s | MB/s | ÷ berth CLI | ÷ berth library | peak RSS MiB | note |",
    "|---|---|---:|---:|---:|---:|---:|---|",
  ];
  for (const op of ["save", "load"] as const) {
    const lib = r.rows.find((x) => x.op === op && x.tool.includes("(library)"));
    const cli = r.rows.find((x) => x.op === op && x.tool.includes("(CLI)"));
    const ratio = (x: ArchiveBenchRow, to: ArchiveBenchRow | undefined) => (!to || x === to ? "—" : (x.medianSeconds / to.medianSeconds).toFixed(2));
    for (const x of r.rows.filter((y) => y.op === op)) {
      lines.push(
        `| ${op} | ${x.tool} | ${x.medianSeconds.toFixed(2)} | ${x.mbPerSecond.toFixed(0)} | ${ratio(x, cli)} | ${ratio(x, lib)} | ${x.peakRssMiB.toFixed(0)} | ${x.note ?? ""} |`,
      );
    }
  }
  return lines.join("\n");
}

/**
 * Child mode: `archive.js child load <root> <file>` / `child save <root> <ref>
 * <out>` — the image service's calls, as a tool embedding berth makes them.
 */
async function child(args: string[]): Promise<void> {
  const { openImageService } = await import("@berth/image-service");
  const [op, root] = args;
  const svc = await openImageService({ root: root! });
  try {
    if (op === "load") await svc.load(args[2]!);
    else if (op === "save") await svc.save([args[2]!], args[3]!);
    else throw new Error(`unknown child op ${op}`);
  } finally {
    await svc.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const main = process.argv[2] === "child" ? child(process.argv.slice(3)) : run().then(() => undefined);
  main.catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
