/**
 * Registry benchmark (issue 15): push and pull of the bench image (default
 * 1 GiB, 5 layers) between a store and Debian's docker-registry
 * (distribution 2.8, `@berth/peers`' `registry()` on 127.0.0.1), in one run,
 * the tools alternated round-robin (the one that starts rotates each round),
 * each under `/usr/bin/time` (wall time, peak RSS, CPU; for docker also
 * dockerd's CPU from /proc), `sync` and a quiet pause before every run, the
 * input of each push read once before it (in the page cache):
 *
 * - push to an empty repository: `berth push REF` (the CLI as users type it,
 *   `BERTH_ROOT` a store the image was `berth load`ed into: its layers are
 *   the archive's uncompressed tars, gzipped on the way, the default), the
 *   library call `ImageService.push` (`@berth/image-service`, a child process
 *   of its own), `skopeo copy docker-archive:FILE docker://REF` and
 *   `docker push REF` (the shared dockerd of `@berth/peers`, the image
 *   `docker load`ed from the same archive). Every push goes to a registry
 *   started for it: all three clients remember where blobs went (berth's
 *   and skopeo's blob-info caches, dockerd's v2 metadata) and would mount
 *   them from a repository pushed earlier in the run instead of uploading.
 *   berth's blob-info cache is emptied before each of its pushes too: each
 *   is a first push, compressing every layer.
 * - second push of the unchanged image: `berth push REF` again right after
 *   berth's push (and the library's after the library's), same registry.
 * - pull into an empty store: `berth pull REF` (a fresh `BERTH_ROOT` each
 *   time), `ImageService.pull` (child process), `skopeo copy docker://REF
 *   oci:DIR:bench` (a fresh DIR; also followed by `sync`, a row of its own:
 *   berth fsyncs what it stores, skopeo does not) and `docker pull REF` (the image removed
 *   from dockerd before, and checked that no layer is left: its output must
 *   not say "Already exists"), all from one registry that `skopeo copy`
 *   filled once (a Docker v2 manifest, gzip layers).
 *
 * The image: the docker-archive `bench-image.ts` writes (5 layers of random
 * bytes, text and 4 KiB text files), kept in the work dir between runs.
 *
 *   npx -y pnpm@10.34.8 build && node tools/bench/dist/registry.js
 *   BERTH_BENCH_REGISTRY_MB=64 BERTH_BENCH_RUNS=1 node tools/bench/dist/registry.js
 *
 * Environment: BERTH_BENCH_REGISTRY_MB (image size, default 1024),
 * BERTH_BENCH_RUNS (rounds, default 3), BERTH_BENCH_SETTLE (seconds of quiet
 * before every run, default 2), BERTH_BENCH_DIR (work dir, default
 * /tmp/berth-bench-registry; the archive is kept there), BERTH_BENCH_LIBRARY=0
 * (skip the library rows), BERTH_BENCH_OPS=push|pull (one half only; default
 * both), DOCKER_HOST (else the shared test dockerd is
 * started), BERTH_BENCH_KEEP=1 (leave berth's push store afterwards). dockerd
 * holds the image only while docker's own rows run (loaded for each docker
 * push, removed after it and after each docker pull).
 *
 * Not timed here: a resumed pull after a kill at 50 % (issue 15's "transfers
 * ≤ 55 % of the bytes"); `apps/cli/test/resume.peer.test.ts` kills `berth
 * pull` part-way and counts, in the registry's access log, the bytes the
 * second run fetches (exactly the layer's size minus what was kept).
 * @module
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { median, sh } from "./archive.js";
import { benchArchive, type BenchImage } from "./bench-image.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../../..");
const peersDist = pathToFileURL(join(repoRoot, "tools/peers/dist/index.js")).href;
const cli = join(repoRoot, "apps/cli/dist/berth.js");
const DOCKER = "/usr/bin/docker";
const MiB = 1 << 20;

interface RegistryPeer {
  host: string;
  storageDir: string;
  pid: number;
  stop(): Promise<void>;
}
interface Peers {
  requirePeer(name: string): Promise<string | undefined>;
  registry(): Promise<RegistryPeer | undefined>;
  dockerd(): Promise<{ env: NodeJS.ProcessEnv } | undefined>;
  dockerdPaths(): { pidFile: string };
}

export interface Measure {
  seconds: number;
  maxRssKiB: number;
  user: number;
  sys: number;
  stdout: string;
  stderr: string;
  /** CPU seconds the registry the command talked to used meanwhile ({@link timedAt}). */
  registryCpu?: number;
}

/** Run a command under /usr/bin/time: wall seconds, peak RSS, CPU, and what it printed. */
export function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Measure> {
  return new Promise((ok, fail) => {
    execFile("/usr/bin/time", ["-f", "BENCH %e %M %U %S", cmd, ...args], { env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) return fail(new Error(`${cmd} ${args.join(" ")} failed: ${stderr.slice(-2000)}`));
      const m = /BENCH ([0-9.]+) ([0-9]+) ([0-9.]+) ([0-9.]+)\s*$/.exec(stderr);
      if (!m) return fail(new Error(`no timing from /usr/bin/time: ${stderr.slice(-500)}`));
      ok({ seconds: Number(m[1]), maxRssKiB: Number(m[2]), user: Number(m[3]), sys: Number(m[4]), stdout, stderr: stderr.slice(0, m.index) });
    });
  });
}

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

// ---- helpers ------------------------------------------------------------------------------------

/** Bytes of the blobs a docker-registry holds (its filesystem storage). */
function registryBlobBytes(storageDir: string): number {
  const walk = (d: string): number => {
    let n = 0;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) n += walk(p);
      else if (e.isFile() && e.name === "data") n += statSync(p).size;
    }
    return n;
  };
  const blobs = join(storageDir, "docker", "registry", "v2", "blobs");
  return existsSync(blobs) ? walk(blobs) : 0;
}

/** The layer blobs of `repo:tag` in a docker-registry: digest, size and the file its filesystem storage keeps. */
async function registryLayers(reg: RegistryPeer, repo: string, tag: string): Promise<Array<{ digest: string; size: number; path: string }>> {
  const res = await fetch(`http://${reg.host}/v2/${repo}/manifests/${tag}`, { headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" } });
  if (!res.ok) throw new Error(`manifest ${repo}:${tag}: HTTP ${res.status}`);
  const manifest = (await res.json()) as { layers: Array<{ digest: string; size: number }> };
  return manifest.layers.map(({ digest, size }) => {
    const hex = digest.slice(7);
    return { digest, size, path: join(reg.storageDir, "docker", "registry", "v2", "blobs", "sha256", hex.slice(0, 2), hex, "data") };
  });
}

/**
 * The floors, one curl per blob side by side (curl costs next to no CPU):
 * what any client's push or pull takes at least against this registry on
 * this machine. Upload: `sh -c CURL_UPLOAD sh BASE REPO (DIGEST FILE)…`, a
 * `POST` and a monolithic `PUT …&digest=` per blob. Download: `sh -c
 * CURL_DOWNLOAD sh BASE REPO DIR DIGEST…`, each blob into DIR, then `sync`.
 */
const CURL_UPLOAD = `base=$1 repo=$2; shift 2
up() {
  loc=$(curl -sSf -o /dev/null -w '%header{location}' -X POST "$base/v2/$repo/blobs/uploads/") || exit 1
  case $loc in /*) loc=$base$loc;; esac
  case $loc in *"?"*) sep='&';; *) sep='?';; esac
  curl -sSf -o /dev/null -H 'content-type: application/octet-stream' -T "$2" "$loc\${sep}digest=$1"
}
pids=; while [ $# -gt 1 ]; do up "$1" "$2" & pids="$pids $!"; shift 2; done
for p in $pids; do wait $p || exit 1; done`;
const CURL_DOWNLOAD = `base=$1 repo=$2 dir=$3; shift 3
pids=; for d; do curl -sSf -o "$dir/\${d#sha256:}" "$base/v2/$repo/blobs/$d" & pids="$pids $!"; done
for p in $pids; do wait $p || exit 1; done
sync`;
const PUSH_FLOOR = "floor: curl upload of the gzip blobs";
const PULL_FLOOR = "floor: curl download + sync";

/** CPU seconds (user + system) a process has used, from /proc (0 when it is not there). */
function cpuOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** One result row. */
export interface RegistryBenchRow {
  op: "push" | "re-push" | "pull";
  tool: string;
  medianSeconds: number;
  runs: number[];
  /** Image (layer tar) MiB per second, by the median. */
  mibPerSecond: number;
  /** Median CPU seconds of the measured process (user + system). */
  cpuSeconds: number;
  peakRssMiB: number;
  /** Median seconds of the library call itself (inside its child process, after start-up). */
  callSeconds?: number;
  /** Median dockerd CPU seconds during the run (docker rows). */
  daemonCpuSeconds?: number;
  /** Median CPU seconds of the registry the tool talked to, during the run. */
  registryCpuSeconds?: number;
  note?: string;
}

/** Run the benchmark; prints the runs, a Markdown table, the ratios against issue 15's targets and the commands. */
export async function run(_args: string[] = []): Promise<RegistryBenchRow[]> {
  const mb = Number(process.env.BERTH_BENCH_REGISTRY_MB ?? 1024);
  const runs = Number(process.env.BERTH_BENCH_RUNS ?? 3);
  const settle = Number(process.env.BERTH_BENCH_SETTLE ?? 2);
  const work = process.env.BERTH_BENCH_DIR ?? "/tmp/berth-bench-registry";
  const library = process.env.BERTH_BENCH_LIBRARY !== "0";
  const ops = new Set((process.env.BERTH_BENCH_OPS ?? "push,pull").split(","));
  const rm = (p: string) => rmSync(p, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const peers = (await import(peersDist)) as Peers;
  const skopeo = await peers.requirePeer("skopeo");
  if (!skopeo) throw new Error("the registry bench needs skopeo (apt-get install -y skopeo)");
  if (!(await peers.requirePeer("docker-registry"))) throw new Error("the registry bench needs docker-registry (apt-get install -y docker-registry)");
  let denv: NodeJS.ProcessEnv = process.env;
  if (!process.env.DOCKER_HOST) {
    const d = await peers.dockerd();
    if (!d) throw new Error("the registry bench needs dockerd (@berth/peers could not start it)");
    denv = d.env;
  }
  const dockerdPid = (() => {
    try {
      return Number(readFileSync(peers.dockerdPaths().pidFile, "utf8").trim()) || undefined;
    } catch {
      return undefined;
    }
  })();
  const docker = (args: string[]) => sh(DOCKER, args, denv);
  const self = fileURLToPath(import.meta.url);
  /** Read every file under `dir` once: each push starts with its input in the page cache. */
  const warm = (p: string | string[]) => execFileSync("sh", ["-c", 'find "$@" -type f -exec cat {} + > /dev/null', "sh", ...[p].flat()]);
  const quiet = async () => {
    execFileSync("sync");
    if (settle > 0) await sleep(settle);
  };

  const t0 = Date.now();
  const image = benchArchive(work, mb);
  const store = join(work, "store");
  const storeEnv = { ...process.env, BERTH_ROOT: store };
  const berth = (env: NodeJS.ProcessEnv, args: string[]) => sh(process.execPath, [cli, ...args], env);
  rm(store);
  berth(storeEnv, ["-q", "load", "-i", image.file]);
  const { BLOB_INFO_CACHE_DIR } = await import("@berth/image-service");
  const hasDockerImage = () => {
    try {
      docker(["image", "inspect", "--format", "{{.Id}}", image.id]);
      return true;
    } catch {
      return false;
    }
  };
  const ensureDockerImage = () => {
    if (!hasDockerImage()) docker(["load", "-q", "-i", image.file]);
    docker(["tag", image.id, image.tag]);
  };
  // dockerd's copy of the image (vfs: a whole tree per layer, ~5 GB on the same disk) is there only
  // while docker's own rows run: left in place, it added ~1 s of system time to each berth pull after
  // it (the fdatasyncs of the store's commits; 2026-12-08), which skopeo, not syncing, did not pay
  const removeDockerImage = () => {
    if (hasDockerImage()) docker(["rmi", "-f", image.id]);
    if (hasDockerImage()) throw new Error(`could not remove ${image.id} from dockerd`);
  };
  removeDockerImage();
  // the pull source: one registry, filled once by skopeo (neither berth's nor docker's own push)
  const source = await peers.registry();
  if (!source) throw new Error("the registry bench needs docker-registry");
  const pullRef = `${source.host}/bench/image:1`;
  sh(skopeo, ["copy", "--quiet", "--dest-tls-verify=false", `docker-archive:${image.file}`, `docker://${pullRef}`]);
  const sourceBytes = registryBlobBytes(source.storageDir);
  const sourceLayers = await registryLayers(source, "bench/image", "1");
  process.stdout.write(
    `registry bench: ${mb} MiB image (${image.layers} layers, ${(image.bytes / MiB).toFixed(0)} MiB of layer tars, ${(statSync(image.file).size / MiB).toFixed(0)} MiB archive; ` +
      `${(sourceBytes / MiB).toFixed(0)} MiB of gzip blobs in the registry), ${runs} rounds, alternated; setup ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
  );

  const times = new Map<string, { op: RegistryBenchRow["op"]; tool: string; ms: Measure[]; call: number[]; daemon: number[]; note?: string }>();
  const record = (op: RegistryBenchRow["op"], tool: string, m: Measure, extra: { call?: number; daemon?: number; note?: string } = {}) => {
    const k = `${op} ${tool}`;
    const e = times.get(k) ?? { op, tool, ms: [], call: [], daemon: [], ...(extra.note ? { note: extra.note } : {}) };
    e.ms.push(m);
    if (extra.call !== undefined) e.call.push(extra.call);
    if (extra.daemon !== undefined) e.daemon.push(extra.daemon);
    times.set(k, e);
    return m;
  };
  const fresh = async () => {
    const reg = await peers.registry();
    if (!reg) throw new Error("the registry bench needs docker-registry");
    return reg;
  };
  const line: string[] = [];
  const log = (s: string) => line.push(s);
  const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
  const pushedAll = (reg: RegistryPeer, what: string) => {
    const b = registryBlobBytes(reg.storageDir);
    // every layer uploaded (gzip of the same tars: within a few % of what skopeo put in the source)
    if (b < sourceBytes * 0.9) throw new Error(`${what}: the registry holds ${mib(b)}, expected about ${mib(sourceBytes)} (a mount or a skipped layer?)`);
    return b;
  };
  const berthPushSummary = (m: Measure) => /Pushed \d+ blob\(s\) \([^)]*\), \d+ mounted, \d+ already there(; manifest [a-z ]+)?/.exec(m.stderr)?.[0] ?? "(no summary)";
  /** {@link timed}, and the CPU `reg` (the registry the command talks to) spent meanwhile. */
  const timedAt = async (reg: RegistryPeer, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Measure> => {
    const before = cpuOf(reg.pid);
    const m = await timed(cmd, args, env);
    return { ...m, registryCpu: cpuOf(reg.pid) - before };
  };
  const childPush = (reg: RegistryPeer, ref: string) => timedAt(reg, process.execPath, [self, "child", "push", store, ref]);
  const callOf = <T = { seconds: number; uploaded: number; existing: number; mounted: number; manifests: number; bytes: number }>(m: Measure) => JSON.parse(m.stdout.trim().split("\n").pop()!) as T;

  const pushTools: Array<{ name: string; go(r: number): Promise<void> }> = [
    {
      name: "berth push (CLI)",
      async go(r) {
        const reg = await fresh();
        try {
          const ref = `${reg.host}/bench/berth-cli:${r}`;
          berth(storeEnv, ["-q", "tag", image.tag, ref]);
          rm(join(store, BLOB_INFO_CACHE_DIR)); // a first push: no layer compressed before
          warm(store);
          await quiet();
          const m = record("push", "berth push (CLI)", await timedAt(reg, process.execPath, [cli, "push", ref], storeEnv));
          const b = pushedAll(reg, "berth push");
          await quiet();
          const again = record("re-push", "berth push (CLI)", await timedAt(reg, process.execPath, [cli, "push", ref], storeEnv));
          const s = berthPushSummary(again);
          if (!/Pushed 0 blob/.test(s)) throw new Error(`berth re-push sent blobs: ${s}`);
          log(`berth push (CLI) ${m.seconds.toFixed(2)} s [${mib(b)} in the registry; ${berthPushSummary(m)}], re-push ${again.seconds.toFixed(2)} s [${s}]`);
        } finally {
          await reg.stop();
        }
      },
    },
    ...(library
      ? [
          {
            name: "ImageService.push (library)",
            async go(r: number) {
              const reg = await fresh();
              try {
                const ref = `${reg.host}/bench/berth-lib:${r}`;
                berth(storeEnv, ["-q", "tag", image.tag, ref]);
                rm(join(store, BLOB_INFO_CACHE_DIR));
                warm(store);
                await quiet();
                const m = await childPush(reg, ref);
                record("push", "ImageService.push (library)", m, { call: callOf(m).seconds });
                const b = pushedAll(reg, "ImageService.push");
                await quiet();
                const again = await childPush(reg, ref);
                const c = callOf(again);
                if (c.uploaded !== 0 || c.mounted !== 0) throw new Error(`ImageService.push re-push sent blobs: ${JSON.stringify(c)}`);
                record("re-push", "ImageService.push (library)", again, { call: c.seconds });
                log(`library push ${m.seconds.toFixed(2)} s (call ${callOf(m).seconds.toFixed(2)} s) [${mib(b)}], re-push ${again.seconds.toFixed(2)} s (call ${c.seconds.toFixed(3)} s; ${c.uploaded} uploaded, ${c.existing} there, manifests written ${c.manifests})`);
              } finally {
                await reg.stop();
              }
            },
          },
        ]
      : []),
    {
      name: "skopeo copy docker-archive: docker://",
      async go(r) {
        const reg = await fresh();
        try {
          const ref = `${reg.host}/bench/skopeo:${r}`;
          warm(image.file);
          await quiet();
          const m = record(
            "push",
            "skopeo copy docker-archive: docker://",
            await timedAt(reg, skopeo, ["copy", "--quiet", "--dest-tls-verify=false", `docker-archive:${image.file}`, `docker://${ref}`]),
          );
          log(`skopeo push ${m.seconds.toFixed(2)} s [${mib(pushedAll(reg, "skopeo copy"))}]`);
        } finally {
          await reg.stop();
        }
      },
    },
    {
      name: PUSH_FLOOR,
      async go(r) {
        const reg = await fresh();
        try {
          warm(sourceLayers.map((l) => l.path));
          await quiet();
          const args = sourceLayers.flatMap((l) => [l.digest, l.path]);
          const m = record("push", PUSH_FLOOR, await timedAt(reg, "sh", ["-c", CURL_UPLOAD, "sh", `http://${reg.host}`, `bench/floor-${r}`, ...args]), {
            note: "skopeo's gzip blobs uploaded as they are: no compression, no hashing in the client",
          });
          log(`curl upload ${m.seconds.toFixed(2)} s [${mib(pushedAll(reg, "curl upload"))}]`);
        } finally {
          await reg.stop();
        }
      },
    },
    {
      name: "docker push",
      async go(r) {
        const reg = await fresh();
        const ref = `${reg.host}/bench/docker:${r}`;
        try {
          ensureDockerImage();
          docker(["tag", image.id, ref]);
          await quiet();
          const cpu = cpuOf(dockerdPid);
          const m = await timedAt(reg, DOCKER, ["push", ref], denv);
          const daemon = cpuOf(dockerdPid) - cpu;
          record("push", "docker push", m, { daemon, note: "client RSS and CPU; dockerd does the work (its CPU: daemon column)" });
          if (/Mounted from|already exists/i.test(m.stdout)) throw new Error(`docker push did not upload every layer:\n${m.stdout}`);
          log(`docker push ${m.seconds.toFixed(2)} s (dockerd CPU ${daemon.toFixed(1)} s) [${mib(pushedAll(reg, "docker push"))}]`);
        } finally {
          removeDockerImage();
          await reg.stop();
        }
      },
    },
  ];

  const pullRoot = join(work, "pull-store");
  const pullOci = join(work, "pull-oci");
  const pullTools: Array<{ name: string; go(r: number): Promise<void> }> = [
    {
      name: "berth pull (CLI)",
      async go() {
        rm(pullRoot);
        await quiet();
        const env = { ...process.env, BERTH_ROOT: pullRoot };
        const m = record("pull", "berth pull (CLI)", await timedAt(source, process.execPath, [cli, "pull", pullRef], env));
        const id = (JSON.parse(berth(env, ["inspect", pullRef])) as Array<{ Id: string }>)[0]?.Id;
        if (id !== image.id) throw new Error(`berth pull: image ID ${id}, expected ${image.id}`);
        log(`berth pull (CLI) ${m.seconds.toFixed(2)} s`);
        rm(pullRoot);
      },
    },
    ...(library
      ? [
          {
            name: "ImageService.pull (library)",
            async go() {
              rm(pullRoot);
              await quiet();
              const m = await timedAt(source, process.execPath, [self, "child", "pull", pullRoot, pullRef]);
              const c = callOf<{ seconds: number; id: string }>(m);
              if (c.id !== image.id) throw new Error(`ImageService.pull: image ID ${c.id}, expected ${image.id}`);
              record("pull", "ImageService.pull (library)", m, { call: c.seconds });
              log(`library pull ${m.seconds.toFixed(2)} s (call ${c.seconds.toFixed(2)} s)`);
              rm(pullRoot);
            },
          },
        ]
      : []),
    {
      name: "skopeo copy docker:// oci:",
      async go() {
        rm(pullOci);
        await quiet();
        const m = record(
          "pull",
          "skopeo copy docker:// oci:",
          await timedAt(source, skopeo, ["copy", "--quiet", "--src-tls-verify=false", `docker://${pullRef}`, `oci:${pullOci}:bench`]),
        );
        // skopeo writes an OCI manifest and converts the config to OCI's (another digest): compare the layers
        const blob = (d: string) => JSON.parse(readFileSync(join(pullOci, "blobs", "sha256", d.slice(7)), "utf8")) as unknown;
        const index = JSON.parse(readFileSync(join(pullOci, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
        const manifest = blob(index.manifests[0]!.digest) as { config: { digest: string } };
        const diffIds = (blob(manifest.config.digest) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
        if (diffIds.join() !== image.diffIds.join()) throw new Error(`skopeo pull: DiffIDs ${diffIds.join()}, expected ${image.diffIds.join()}`);
        log(`skopeo pull ${m.seconds.toFixed(2)} s`);
        rm(pullOci);
      },
    },
    {
      name: "skopeo copy docker:// oci: + sync",
      async go() {
        rm(pullOci);
        await quiet();
        const m = record(
          "pull",
          "skopeo copy docker:// oci: + sync",
          await timedAt(source, "sh", ["-c", '"$@" && sync', "sh", skopeo, "copy", "--quiet", "--src-tls-verify=false", `docker://${pullRef}`, `oci:${pullOci}:bench`]),
          { note: "on disk when it returns, as berth's pull is (it fsyncs what it stores)" },
        );
        log(`skopeo pull + sync ${m.seconds.toFixed(2)} s`);
        rm(pullOci);
      },
    },
    {
      name: PULL_FLOOR,
      async go() {
        rm(pullOci);
        mkdirSync(pullOci);
        await quiet();
        const args = [`http://${source.host}`, "bench/image", pullOci, ...sourceLayers.map((l) => l.digest)];
        const m = record("pull", PULL_FLOOR, await timedAt(source, "sh", ["-c", CURL_DOWNLOAD, "sh", ...args]), {
          note: "the layer blobs written and synced: no digest checked, nothing else stored",
        });
        for (const l of sourceLayers) {
          if (statSync(join(pullOci, l.digest.slice(7))).size !== l.size) throw new Error(`curl download: ${l.digest} incomplete`);
        }
        log(`curl download + sync ${m.seconds.toFixed(2)} s`);
        rm(pullOci);
      },
    },
    {
      name: "docker pull",
      async go() {
        // the image and every tag of it go, and with them its layers (no other image has them)
        removeDockerImage();
        await quiet();
        const cpu = cpuOf(dockerdPid);
        const m = await timedAt(source, DOCKER, ["pull", pullRef], denv);
        const daemon = cpuOf(dockerdPid) - cpu;
        record("pull", "docker pull", m, { daemon, note: "client RSS and CPU; dockerd does the work (its CPU: daemon column)" });
        if (/Already exists/.test(m.stdout)) throw new Error(`docker pull found layers already there:\n${m.stdout}`);
        const id = docker(["image", "inspect", "--format", "{{.Id}}", pullRef]).trim();
        if (id !== image.id) throw new Error(`docker pull: image ID ${id}, expected ${image.id}`);
        log(`docker pull ${m.seconds.toFixed(2)} s (dockerd CPU ${daemon.toFixed(1)} s)`);
        removeDockerImage();
      },
    },
  ];

  try {
    for (let r = 0; r < runs; r++) {
      for (const [op, tools] of [
        ["push", pushTools],
        ["pull", pullTools],
      ] as const) {
        if (!ops.has(op)) continue;
        line.length = 0;
        for (let k = 0; k < tools.length; k++) await tools[(r + k) % tools.length]!.go(r);
        process.stdout.write(`round ${r + 1} ${op}: ${line.join("; ")}\n`);
      }
    }
  } finally {
    await source.stop();
    rm(pullRoot);
    rm(pullOci);
    if (process.env.BERTH_BENCH_KEEP !== "1") rm(store);
    try {
      removeDockerImage();
    } catch {
      // dockerd is gone: nothing of the image is left to remove
    }
  }

  const rows: RegistryBenchRow[] = [...times.values()].map((e) => {
    const s = median(e.ms.map((m) => m.seconds));
    return {
      op: e.op,
      tool: e.tool,
      medianSeconds: s,
      runs: e.ms.map((m) => m.seconds),
      mibPerSecond: image.bytes / MiB / s,
      cpuSeconds: median(e.ms.map((m) => m.user + m.sys)),
      peakRssMiB: Math.max(...e.ms.map((m) => m.maxRssKiB)) / 1024,
      ...(e.call.length ? { callSeconds: median(e.call) } : {}),
      ...(e.daemon.length ? { daemonCpuSeconds: median(e.daemon) } : {}),
      ...(e.ms.every((m) => m.registryCpu !== undefined) ? { registryCpuSeconds: median(e.ms.map((m) => m.registryCpu!)) } : {}),
      ...(e.note ? { note: e.note } : {}),
    };
  });
  const order = ["push", "re-push", "pull"];
  rows.sort((a, b) => order.indexOf(a.op) - order.indexOf(b.op));
  process.stdout.write(`\n${toMarkdown(rows)}\n\n${verdicts(rows).join("\n")}\n\n${commands(image, skopeo).join("\n")}\n`);
  return rows;
}

const TARGETS: Record<string, string> = {
  "push skopeo copy docker-archive: docker://": "≥ 2×",
  "push docker push": "≥ 3×",
  "pull skopeo copy docker:// oci:": "≥ 1.5×",
  "pull docker pull": "≥ 3×",
};

/** The rows as a Markdown table: ratios are the peer's time ÷ berth's (> 1: berth is faster). */
export function toMarkdown(rows: RegistryBenchRow[]): string {
  const lines = [
    "| op | tool | median s | runs | image MiB/s | CPU s | daemon CPU s | registry CPU s | peak RSS MiB | ÷ berth CLI | ÷ library | issue 15 target |",
    "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const cliRow = rows.find((x) => x.op === r.op && x.tool.startsWith("berth "));
    const libRow = rows.find((x) => x.op === r.op && x.tool.startsWith("ImageService"));
    const berthish = r === cliRow || r === libRow;
    const ratio = (to: RegistryBenchRow | undefined) => (!to || berthish ? "—" : (r.medianSeconds / to.medianSeconds).toFixed(2));
    const secs = `${r.medianSeconds.toFixed(2)}${r.callSeconds !== undefined ? ` (call ${r.callSeconds.toFixed(r.op === "re-push" ? 3 : 2)})` : ""}`;
    lines.push(
      `| ${r.op} | ${r.tool} | ${secs} | ${r.runs.map((x) => x.toFixed(2)).join(" / ")} | ${r.op === "re-push" ? "—" : r.mibPerSecond.toFixed(0)} | ${r.cpuSeconds.toFixed(2)} | ${r.daemonCpuSeconds !== undefined ? r.daemonCpuSeconds.toFixed(1) : "—"} | ${r.registryCpuSeconds !== undefined ? r.registryCpuSeconds.toFixed(2) : "—"} | ${r.peakRssMiB.toFixed(0)} | ${ratio(cliRow)} | ${ratio(libRow)} | ${TARGETS[`${r.op} ${r.tool}`] ?? (r.op === "re-push" && r.tool.startsWith("berth") ? "≤ 0.3 s" : "")} |`,
    );
  }
  return lines.join("\n");
}

function verdicts(rows: RegistryBenchRow[]): string[] {
  const of = (op: string, prefix: string) => rows.find((r) => r.op === op && r.tool.startsWith(prefix));
  const out: string[] = ["Against issue 15's targets (peer ÷ berth CLI, medians):"];
  const ratio = (op: string, peer: string, target: number, label: string) => {
    const p = of(op, peer);
    const b = of(op, "berth ");
    if (!p || !b) return;
    const x = p.medianSeconds / b.medianSeconds;
    const lib = of(op, "ImageService");
    const l = lib ? `, library ${(p.medianSeconds / lib.medianSeconds).toFixed(2)}×` : "";
    out.push(`- ${op} vs ${label}: ${x.toFixed(2)}× (target ≥ ${target}×: ${x >= target ? "met" : "not met"})${l}`);
  };
  ratio("push", "skopeo", 2, "skopeo copy");
  ratio("push", "docker", 3, "docker push");
  ratio("pull", "skopeo", 1.5, "skopeo copy");
  ratio("pull", "docker", 3, "docker pull");
  // what the ratio targets leave once the floor (curl moving the bytes, nothing else) is paid
  const floor = (op: string, floorTool: string, peer: string, target: number, rest: string) => {
    const f = of(op, floorTool);
    const p = of(op, peer);
    if (!f || !p) return;
    const goal = p.medianSeconds / target;
    const reg = f.registryCpuSeconds !== undefined ? ` (the registry ${f.registryCpuSeconds.toFixed(2)} s of CPU)` : "";
    out.push(`- ${op} ${floorTool}: ${f.medianSeconds.toFixed(2)} s${reg}; the ${target}× target is ${goal.toFixed(2)} s, ${(goal - f.medianSeconds).toFixed(2)} s more than the floor for ${rest}`);
  };
  floor("push", PUSH_FLOOR, "skopeo", 2, "reading, gzipping and hashing the layers on the same cores");
  floor("pull", PULL_FLOOR, "skopeo", 1.5, "checking digests and DiffIDs and recording the image");
  const again = of("re-push", "berth ");
  const againLib = of("re-push", "ImageService");
  if (again) {
    const lib = againLib ? `; library: ${againLib.medianSeconds.toFixed(2)} s with node start-up, the call ${againLib.callSeconds?.toFixed(3)} s` : "";
    out.push(`- second push of the unchanged image: berth push ${again.medianSeconds.toFixed(2)} s (target ≤ 0.3 s: ${again.medianSeconds <= 0.3 ? "met" : "not met"})${lib}`);
  }
  for (const op of ["push", "pull"]) {
    const b = of(op, "berth ");
    if (b) out.push(`- peak RSS of berth ${op} (CLI process): ${b.peakRssMiB.toFixed(0)} MiB (target ≤ 200 MiB: ${b.peakRssMiB <= 200 ? "met" : "not met"})`);
  }
  out.push("- resumed pull after a kill at 50 % (target: ≤ 55 % of the bytes): not timed here; apps/cli/test/resume.peer.test.ts counts the bytes of a resumed pull (the layer's size minus what the killed run kept)");
  return out;
}

function commands(image: BenchImage, skopeo: string): string[] {
  const env = ["BERTH_BENCH_REGISTRY_MB", "BERTH_BENCH_RUNS", "BERTH_BENCH_SETTLE", "BERTH_BENCH_DIR", "BERTH_BENCH_LIBRARY", "BERTH_BENCH_OPS"]
    .filter((k) => process.env[k] !== undefined)
    .map((k) => `${k}=${process.env[k]} `)
    .join("");
  return [
    "Reproduce:",
    `  npx -y pnpm@10.34.8 build && ${env}node tools/bench/dist/registry.js`,
    "The commands timed (HOST: a docker-registry started for the run, 127.0.0.1:PORT):",
    `  BERTH_ROOT=STORE node apps/cli/dist/berth.js push HOST/bench/berth-cli:N      # STORE: berth load -i ${image.file}; then the same again (re-push)`,
    `  node tools/bench/dist/registry.js child push STORE HOST/bench/berth-lib:N   # ImageService.push in a process of its own`,
    `  ${skopeo} copy --quiet --dest-tls-verify=false docker-archive:${image.file} docker://HOST/bench/skopeo:N`,
    `  ${DOCKER} push HOST/bench/docker:N                                       # after docker load -i ${image.file}; docker tag`,
    `  BERTH_ROOT=EMPTY node apps/cli/dist/berth.js pull HOST/bench/image:1`,
    `  node tools/bench/dist/registry.js child pull EMPTY HOST/bench/image:1`,
    `  ${skopeo} copy --quiet --src-tls-verify=false docker://HOST/bench/image:1 oci:EMPTY:bench   # and the same && sync`,
    `  ${DOCKER} pull HOST/bench/image:1                                           # after docker rmi -f ${image.id.slice(0, 19)}…`,
  ];
}

/**
 * Child mode: `registry.js child push <root> <ref>` / `child pull <root>
 * <ref>` — the image service's calls, as a tool embedding berth makes them;
 * prints one JSON line with the call's own seconds.
 */
async function child([op, root, ref]: string[]): Promise<void> {
  const { openImageService } = await import("@berth/image-service");
  const svc = await openImageService({ root: root! });
  try {
    const t = process.hrtime.bigint();
    if (op === "push") {
      const r = await svc.push(ref!);
      const seconds = Number(process.hrtime.bigint() - t) / 1e9;
      const count = (s: string) => r.blobs.filter((b) => b.status === s).length;
      process.stdout.write(`${JSON.stringify({ seconds, uploaded: count("uploaded"), existing: count("exists"), mounted: count("mounted"), manifests: r.manifestsWritten, bytes: r.bytesTransferred })}\n`);
    } else if (op === "pull") {
      const r = await svc.pull(ref!);
      const seconds = Number(process.hrtime.bigint() - t) / 1e9;
      process.stdout.write(`${JSON.stringify({ seconds, id: r.id, bytes: r.bytesTransferred })}\n`);
    } else throw new Error(`unknown child op ${op}`);
  } finally {
    await svc.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const main = process.argv[2] === "child" ? child(process.argv.slice(3)) : run().then(() => undefined);
  main.catch((err: unknown) => {
    process.stderr.write(`registry bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
