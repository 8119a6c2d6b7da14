import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requirePeer } from "./commands.js";
import { PeerTimeoutError, PeerUnavailableError } from "./errors.js";
import { tail } from "./exec.js";
import { sleep } from "./proc.js";
import { type AccessLogEntry, authConfigLines, type RegistryAuth, readAccessLog, TEST_USER } from "./registry-auth.js";

/** A running docker-registry (distribution 2.8) on 127.0.0.1. */
export interface RegistryPeer {
  /** `127.0.0.1:PORT` — use as the registry part of image references. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Its storage directory (a fresh temp dir, removed by stop()). */
  storageDir: string;
  /** Its log file (kept after stop() while the temp dir exists). */
  logFile: string;
  /** Process id. */
  pid: number;
  /** How it authenticates (`{ kind: "none" }` by default). */
  auth: RegistryAuth;
  /** For htpasswd and token registries: a user that may push and pull. */
  user: { username: string; password: string } | undefined;
  /**
   * Every request the registry has logged so far (its access log, one entry
   * per request, in order). Take `.length` before an operation and slice after
   * it to see what the operation sent.
   */
  accessLog(): Promise<AccessLogEntry[]>;
  /** Kills the registry and removes its temp directory. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link registry}. */
export interface RegistryOptions {
  /** How long to wait for `/v2/` to answer. Default 30 000 ms. */
  readyTimeoutMs?: number;
  /** Allow DELETE of manifests and blobs. Default true. */
  deleteEnabled?: boolean;
  /** Authentication: none (default), htpasswd Basic auth, or tokens from a {@link TokenIssuer}. */
  auth?: RegistryAuth;
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function v2Answers(url: string, authed: boolean): Promise<boolean> {
  try {
    const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.status === (authed ? 401 : 200);
  } catch {
    return false;
  }
}

const live = new Set<ChildProcess>();
let exitHook = false;

/**
 * Starts Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with a free
 * port, filesystem storage in a new temp dir and a config written here (with
 * the `auth` section of `options.auth`); waits until `GET /v2/` answers (200,
 * or 401 with auth). Each call starts its own registry; call
 * `stop()` when done (it is also killed when this process exits).
 * Returns undefined when docker-registry is missing and peers are not required;
 * throws PeerUnavailableError when required.
 */
export async function registry(options: RegistryOptions = {}): Promise<RegistryPeer | undefined> {
  const bin = await requirePeer("docker-registry");
  if (!bin) return undefined;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const auth: RegistryAuth = options.auth ?? { kind: "none" };
  const dir = await mkdtemp(join(tmpdir(), "berth-registry-"));
  const authLines = await authConfigLines(auth, dir);
  const user =
    auth.kind === "none"
      ? undefined
      : (() => {
          const users = auth.kind === "token" ? auth.issuer.users : (auth.users ?? { [TEST_USER.username]: TEST_USER.password });
          const [username, password] = Object.entries(users)[0] ?? [];
          return username !== undefined && password !== undefined ? { username, password } : undefined;
        })();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const url = `http://${host}`;
    const storageDir = join(dir, "storage");
    const logFile = join(dir, `registry-${attempt}.log`);
    const config = join(dir, "config.yml");
    await writeFile(
      config,
      [
        "# written by @berth/peers",
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: false",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${JSON.stringify(storageDir)}`,
        "  delete:",
        `    enabled: ${options.deleteEnabled ?? true}`,
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        `  addr: ${JSON.stringify(host)}`,
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
        ...authLines,
        "",
      ].join("\n"),
    );
    const fd = openSync(logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(bin, ["serve", config], { stdio: ["ignore", fd, fd] });
    } finally {
      closeSync(fd);
    }
    const spawned = await new Promise<boolean>((resolve) => {
      child.once("spawn", () => resolve(true));
      child.once("error", (e) => {
        lastError = e;
        resolve(false);
      });
    });
    if (!spawned) break;
    live.add(child);
    if (!exitHook) {
      exitHook = true;
      process.once("exit", () => {
        for (const c of live) c.kill("SIGKILL");
      });
    }
    let exited = false;
    child.once("exit", () => {
      exited = true;
      live.delete(child);
    });
    const deadline = Date.now() + readyTimeoutMs;
    let ready = false;
    while (!exited && Date.now() < deadline) {
      if (await v2Answers(url, auth.kind !== "none")) {
        ready = true;
        break;
      }
      await sleep(100);
    }
    const log = () => {
      try {
        return tail(readFileSync(logFile, "utf8"));
      } catch {
        return "(no log)";
      }
    };
    if (ready) {
      let stopped = false;
      return {
        host,
        url,
        storageDir,
        logFile,
        pid: child.pid!,
        auth,
        user,
        accessLog: () => readAccessLog(logFile),
        async stop() {
          if (stopped) return;
          stopped = true;
          if (!exited) {
            const gone = new Promise<void>((r) => child.once("exit", () => r()));
            child.kill("SIGTERM");
            const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
            await gone;
            clearTimeout(t);
          }
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    if (!exited) {
      child.kill("SIGKILL");
      lastError = new PeerTimeoutError(`docker-registry on ${host} not ready after ${readyTimeoutMs} ms; log ${logFile}:\n${log()}`);
      break;
    }
    lastError = new PeerUnavailableError(`docker-registry on ${host} exited during startup; log ${logFile}:\n${log()}`);
    if (!/address already in use/i.test(log())) break;
  }
  throw lastError instanceof Error
    ? lastError
    : new PeerUnavailableError(`cannot start docker-registry: ${String(lastError)}`, { cause: lastError });
}
