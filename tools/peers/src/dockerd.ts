import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { findCommand, peersRequired } from "./commands.js";
import { PeerUnavailableError, PeerTimeoutError } from "./errors.js";
import { exec, execOk, tail, type ExecResult } from "./exec.js";
import { isAlive, readPid, sleep, terminate, withLock } from "./proc.js";

/**
 * Directory holding everything the launchers own: daemon data, sockets, logs,
 * locks. `$BERTH_PEERS_DIR`, default `/tmp/berth-peers`.
 */
export function peersDir(): string {
  return process.env.BERTH_PEERS_DIR || "/tmp/berth-peers";
}

/** Every path the shared dockerd uses (all under {@link peersDir}). */
export interface DockerdPaths {
  dir: string;
  dataRoot: string;
  execRoot: string;
  socketPath: string;
  host: string;
  logFile: string;
  pidFile: string;
  lockFile: string;
  dockerConfig: string;
  containerdDir: string;
  containerdSocket: string;
  containerdConfig: string;
  containerdLog: string;
  containerdPidFile: string;
}

/** The paths of the shared daemon. */
export function dockerdPaths(): DockerdPaths {
  const dir = peersDir();
  const containerdDir = join(dir, "containerd");
  const socketPath = join(dir, "docker.sock");
  return {
    dir,
    dataRoot: join(dir, "dockerd-root"),
    execRoot: join(dir, "dockerd-exec"),
    socketPath,
    host: `unix://${socketPath}`,
    logFile: join(dir, "dockerd.log"),
    pidFile: join(dir, "dockerd.pid"),
    lockFile: join(dir, "dockerd.lock"),
    dockerConfig: join(dir, "docker-config"),
    containerdDir,
    containerdSocket: join(containerdDir, "containerd.sock"),
    containerdConfig: join(containerdDir, "config.toml"),
    containerdLog: join(dir, "containerd.log"),
    containerdPidFile: join(dir, "containerd.pid"),
  };
}

/** The system containerd, used when it answers (with berth's own namespace). */
const SYSTEM_CONTAINERD = "/run/containerd/containerd.sock";
const DAEMON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Options of {@link DockerPeer.docker}. */
export interface DockerOptions {
  /** Bytes for the client's stdin (e.g. `docker load`, `docker import -`). */
  input?: string | Uint8Array;
  /** Stream stdout to this file (e.g. `docker save`); `stdout` is then "". */
  stdoutFile?: string;
  /** Extra environment variables (e.g. `{ DOCKER_BUILDKIT: "0" }`). */
  env?: NodeJS.ProcessEnv;
  /** Kill the client after this many ms. Default 300 000. */
  timeoutMs?: number;
  /** Working directory of the client. */
  cwd?: string;
}

/** Result of a docker client run: stdout, stderr, both interleaved, exit code. */
export type DockerResult = ExecResult;

/** A running Docker daemon and a client bound to it. */
export interface DockerPeer {
  /** `unix:///tmp/berth-peers/docker.sock` (the DOCKER_HOST value). */
  host: string;
  /** Path of the daemon's socket. */
  socketPath: string;
  /** Environment for any docker client: this process's env plus DOCKER_HOST and a private DOCKER_CONFIG. */
  env: NodeJS.ProcessEnv;
  /** Debian's docker client, `/usr/bin/docker` (20.10). */
  dockerPath: string;
  /** The daemon's log file. */
  logFile: string;
  /** The daemon's data root (vfs storage). */
  dataRoot: string;
  /** Runs the docker client; resolves whatever the exit code. */
  docker(args: string[], opts?: DockerOptions): Promise<DockerResult>;
  /** Runs the docker client; rejects with PeerCommandError on a non-zero exit. */
  run(args: string[], opts?: DockerOptions): Promise<DockerResult>;
}

/** Is something accepting connections on this unix socket? */
export function socketAccepts(path: string, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.on("connect", () => {
      clearTimeout(t);
      s.end();
      resolve(true);
    });
    s.on("error", () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/** `GET /_ping` on a Docker socket: true when the daemon answers OK. */
export function pingDocker(socketPath: string, timeoutMs = 3_000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", method: "GET", timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.on("error", () => resolve(false));
    req.end();
  });
}

async function readTail(file: string, lines = 40): Promise<string> {
  try {
    return tail(await readFile(file, "utf8"), lines);
  } catch {
    return `(no log at ${file})`;
  }
}

/** Starts `cmd args` in its own session with output appended to `logFile`; returns its pid. */
async function spawnDetached(cmd: string, args: string[], logFile: string): Promise<number> {
  try {
    await rename(logFile, `${logFile}.old`);
  } catch {
    /* no previous log */
  }
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(cmd, args, {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: { ...process.env, PATH: `${DAEMON_PATH}:${process.env.PATH ?? ""}` },
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("spawn", () => resolve(child.pid!));
    });
    child.unref();
    return pid;
  } finally {
    closeSync(fd);
  }
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; pid: number; logFile: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    if (!(await isAlive(opts.pid))) {
      throw new PeerUnavailableError(
        `${what} (pid ${opts.pid}) exited during startup; log ${opts.logFile}:\n${await readTail(opts.logFile)}`,
        { details: { logFile: opts.logFile } },
      );
    }
    await sleep(150);
  }
  throw new PeerTimeoutError(
    `${what} (pid ${opts.pid}) not ready after ${opts.timeoutMs} ms; log ${opts.logFile}:\n${await readTail(opts.logFile)}`,
    { details: { logFile: opts.logFile } },
  );
}

/** Address of a containerd for dockerd: the system one if it answers, else berth's own (started if needed). */
async function ensureContainerd(p: DockerdPaths, timeoutMs: number): Promise<string> {
  if (await socketAccepts(SYSTEM_CONTAINERD)) return SYSTEM_CONTAINERD;
  const pid = await readPid(p.containerdPidFile);
  if (pid !== undefined && (await isAlive(pid))) {
    try {
      await waitFor("containerd", () => socketAccepts(p.containerdSocket), {
        timeoutMs: 10_000,
        pid,
        logFile: p.containerdLog,
      });
      return p.containerdSocket;
    } catch {
      await terminate(pid); // hung: replace it
    }
  }
  const bin = await findCommand("containerd");
  if (!bin) throw new PeerUnavailableError("containerd is not installed (apt-get install -y containerd docker.io)");
  await mkdir(p.containerdDir, { recursive: true });
  await writeFile(
    p.containerdConfig,
    [
      "# written by @berth/peers",
      "version = 2",
      `root = ${JSON.stringify(join(p.containerdDir, "root"))}`,
      `state = ${JSON.stringify(join(p.containerdDir, "state"))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = ${JSON.stringify(p.containerdSocket)}`,
      "",
    ].join("\n"),
  );
  await rm(p.containerdSocket, { force: true });
  const newPid = await spawnDetached(bin, ["--config", p.containerdConfig], p.containerdLog);
  await writeFile(p.containerdPidFile, `${newPid}\n`);
  await waitFor("containerd", () => socketAccepts(p.containerdSocket), {
    timeoutMs,
    pid: newPid,
    logFile: p.containerdLog,
  });
  return p.containerdSocket;
}

function makePeer(p: DockerdPaths, dockerPath: string): DockerPeer {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: p.host, DOCKER_CONFIG: p.dockerConfig };
  delete env.DOCKER_CONTEXT;
  delete env.DOCKER_TLS_VERIFY;
  delete env.DOCKER_CERT_PATH;
  const docker = (args: string[], opts: DockerOptions = {}): Promise<DockerResult> =>
    exec(dockerPath, args, {
      env: opts.env ? { ...env, ...opts.env } : env,
      input: opts.input,
      stdoutFile: opts.stdoutFile,
      timeoutMs: opts.timeoutMs ?? 300_000,
      cwd: opts.cwd,
    });
  const run = (args: string[], opts: DockerOptions = {}): Promise<DockerResult> =>
    execOk(dockerPath, args, {
      env: opts.env ? { ...env, ...opts.env } : env,
      input: opts.input,
      stdoutFile: opts.stdoutFile,
      timeoutMs: opts.timeoutMs ?? 300_000,
      cwd: opts.cwd,
    }).catch((e: unknown) => {
      if (e instanceof Error) e.message += `\n(daemon log: ${p.logFile})`;
      throw e;
    });
  return {
    host: p.host,
    socketPath: p.socketPath,
    env,
    dockerPath,
    logFile: p.logFile,
    dataRoot: p.dataRoot,
    docker,
    run,
  };
}

/** Options of {@link startDockerd}. */
export interface StartDockerdOptions {
  /** How long to wait for the daemon to answer. Default 60 000 ms. */
  readyTimeoutMs?: number;
}

/**
 * Starts the shared dockerd (or reuses it when it answers), always throwing
 * {@link PeerUnavailableError} / {@link PeerTimeoutError} on failure. Most
 * callers want {@link dockerd}, which also decides between skipping and failing.
 *
 * One daemon serves every process: a lock file under {@link peersDir} guards the
 * check-and-start, the daemon runs detached (its own session) and outlives the
 * caller. Layout: data-root `dockerd-root`, exec-root `dockerd-exec`, socket
 * `docker.sock`, log `dockerd.log`, storage driver vfs, no iptables, no bridge,
 * containerd namespace `berth-moby`.
 */
export async function startDockerd(options: StartDockerdOptions = {}): Promise<DockerPeer> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
  const p = dockerdPaths();
  const dockerPath = await findCommand("docker");
  const dockerdBin = await findCommand("dockerd");
  if (!dockerPath || !dockerdBin) {
    throw new PeerUnavailableError(
      `Docker is not installed (${!dockerPath ? "/usr/bin/docker" : "dockerd"} missing; apt-get install -y docker.io)`,
    );
  }
  if (process.getuid && process.getuid() !== 0) {
    if (await pingDocker(p.socketPath)) return makePeer(p, dockerPath);
    throw new PeerUnavailableError(
      `the shared dockerd is not running and starting it needs root (run: sudo node tools/peers/dist/cli.js start)`,
    );
  }
  await mkdir(p.dir, { recursive: true });
  return withLock(p.lockFile, readyTimeoutMs * 2 + 30_000, async () => {
    const containerdUp = async () =>
      (await socketAccepts(SYSTEM_CONTAINERD)) || (await socketAccepts(p.containerdSocket));
    if (await pingDocker(p.socketPath)) {
      if (await containerdUp()) return makePeer(p, dockerPath);
      // dockerd answers but its containerd is gone: containers could not run. Restart both.
      const stale = await readPid(p.pidFile);
      if (stale !== undefined) await terminate(stale, 30_000);
    }
    const oldPid = await readPid(p.pidFile);
    if (oldPid !== undefined && (await isAlive(oldPid))) {
      // A daemon is there but does not answer (yet): give it the startup budget, then replace it.
      try {
        await waitFor("dockerd", () => pingDocker(p.socketPath), {
          timeoutMs: readyTimeoutMs,
          pid: oldPid,
          logFile: p.logFile,
        });
        return makePeer(p, dockerPath);
      } catch {
        await terminate(oldPid, 30_000);
      }
    }
    const containerd = await ensureContainerd(p, readyTimeoutMs);
    await mkdir(p.dataRoot, { recursive: true });
    // A daemon that was killed (not stopped) leaves its containers' network sandboxes in
    // libnetwork's store, and the next start removes them one by one, about a second each:
    // after enough killed runs dockerd needs minutes to answer. This daemon has no networks
    // of its own (--bridge=none), so the store is garbage whenever no daemon runs; dockerd
    // recreates the built-in "none" and "host" networks on start.
    await rm(join(p.dataRoot, "network", "files", "local-kv.db"), { force: true });
    // ...and the pid file of a killed daemon makes the next one refuse to start.
    await rm(p.pidFile, { force: true });
    await mkdir(p.execRoot, { recursive: true });
    await mkdir(p.dockerConfig, { recursive: true });
    const pid = await spawnDetached(
      dockerdBin,
      [
        "--data-root",
        p.dataRoot,
        "--exec-root",
        p.execRoot,
        "--pidfile",
        p.pidFile,
        "--host",
        p.host,
        "--storage-driver",
        "vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--containerd",
        containerd,
        "--containerd-namespace",
        "berth-moby",
        "--containerd-plugins-namespace",
        "berth-plugins",
      ],
      p.logFile,
    );
    await waitFor("dockerd", () => pingDocker(p.socketPath), { timeoutMs: readyTimeoutMs, pid, logFile: p.logFile });
    const peer = makePeer(p, dockerPath);
    const v = await peer.docker(["version", "--format", "{{.Server.Version}}"], { timeoutMs: 30_000 });
    if (v.code !== 0) {
      throw new PeerUnavailableError(
        `dockerd answers /_ping but "docker version" failed:\n${tail(v.output)}\ndaemon log ${p.logFile}:\n${await readTail(p.logFile)}`,
      );
    }
    return peer;
  });
}

let shared: Promise<DockerPeer | undefined> | undefined;

/**
 * The shared Docker daemon for tests: starts it (or reuses the running one) and
 * returns a {@link DockerPeer}. When Docker is not installed or cannot be
 * started, returns undefined so tests can skip — unless
 * `BERTH_REQUIRE_PEERS=1`, in which case it throws. Memoised per process.
 *
 * ```ts
 * const peer = await dockerd();
 * describe.skipIf(!peer)("against dockerd", () => { ... peer!.run(["images"]) ... });
 * ```
 */
export function dockerd(): Promise<DockerPeer | undefined> {
  shared ??= startDockerd().catch((e: unknown) => {
    if (peersRequired()) throw e;
    console.warn(`@berth/peers: dockerd unavailable, dependent tests skip: ${(e as Error).message}`);
    return undefined;
  });
  return shared;
}

/** What {@link dockerdStatus} reports. */
export interface DockerdStatus {
  /** The daemon answers on its socket. */
  running: boolean;
  /** Daemon pid from its pid file, if that process is alive. */
  pid: number | undefined;
  host: string;
  logFile: string;
  /** berth's own containerd pid, if alive (undefined when the system one is used or none runs). */
  containerdPid: number | undefined;
}

/** Whether the shared dockerd (and berth's containerd) is running. */
export async function dockerdStatus(): Promise<DockerdStatus> {
  const p = dockerdPaths();
  const pid = await readPid(p.pidFile);
  const cpid = await readPid(p.containerdPidFile);
  return {
    running: await pingDocker(p.socketPath),
    pid: pid !== undefined && (await isAlive(pid)) ? pid : undefined,
    host: p.host,
    logFile: p.logFile,
    containerdPid: cpid !== undefined && (await isAlive(cpid)) ? cpid : undefined,
  };
}

/**
 * Stops the shared dockerd and berth's own containerd (never the system one):
 * SIGTERM, then SIGKILL after 30 s. Data stays in {@link peersDir}. Returns the
 * pids it stopped.
 */
export async function stopDockerd(): Promise<{ dockerd?: number; containerd?: number }> {
  const p = dockerdPaths();
  return withLock(p.lockFile, 150_000, async () => {
    const stopped: { dockerd?: number; containerd?: number } = {};
    const pid = await readPid(p.pidFile);
    if (pid !== undefined && (await isAlive(pid))) {
      await terminate(pid, 30_000);
      stopped.dockerd = pid;
    }
    const cpid = await readPid(p.containerdPidFile);
    if (cpid !== undefined && (await isAlive(cpid))) {
      await terminate(cpid, 30_000);
      stopped.containerd = cpid;
    }
    await rm(p.containerdPidFile, { force: true });
    return stopped;
  });
}
