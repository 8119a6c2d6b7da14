/**
 * Which Docker daemon to talk to, and how, resolved the way the docker CLI
 * resolves it (docker/cli `cli/command/cli.go`, `opts/hosts.go`):
 *
 * 1. an explicit `host` (the CLI's `-H`) or `context` (`--context`);
 * 2. `DOCKER_HOST` (then the context is `default`);
 * 3. `DOCKER_CONTEXT`, else `currentContext` in `$DOCKER_CONFIG/config.json`;
 * 4. the `default` context: `DOCKER_HOST`, else `unix:///var/run/docker.sock`
 *    (`tcp://localhost:2376` when TLS is on).
 *
 * The `default` context takes TLS from `DOCKER_TLS_VERIFY` / `DOCKER_TLS` and
 * `DOCKER_CERT_PATH` (ca.pem, cert.pem, key.pem; default `$DOCKER_CONFIG`,
 * else `~/.docker`). A named context takes its host and `SkipTLSVerify` from
 * `$DOCKER_CONFIG/contexts/meta/<sha256(name)>/meta.json` and its TLS files
 * from `$DOCKER_CONFIG/contexts/tls/<sha256(name)>/docker/`; the TLS
 * variables do not apply to it (as in the CLI).
 * @module
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError } from "@berth/digest";
import { ArchiveErrorCode } from "./errors.js";

/** The unix socket the docker CLI uses when nothing says otherwise. */
export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";
/** The address the docker CLI uses when TLS is on and no host is given. */
export const DEFAULT_DOCKER_TLS_HOST = "tcp://localhost:2376";

/** TLS material for a `tcp://` daemon. */
export interface DockerTlsOptions {
  /** CA certificate(s), PEM (undefined: the system's CAs). */
  ca?: Buffer;
  /** Client certificate, PEM. */
  cert?: Buffer;
  /** Client key, PEM. */
  key?: Buffer;
  /** Check the daemon's certificate (false with `DOCKER_TLS` alone, or a context's `SkipTLSVerify`). */
  verify: boolean;
  /** Where the material came from (a directory), for messages. */
  source: string;
}

/** A resolved daemon address. */
export interface DockerEndpoint {
  /** Normalised address: `unix:///path`, `tcp://host:port[/base]` or `ssh://…` as given. */
  host: string;
  /** The docker context it came from (`default` for `DOCKER_HOST`, an explicit host, or nothing set). */
  context: string;
  /** TLS to use on `tcp://` (undefined: plain HTTP). */
  tls?: DockerTlsOptions;
}

/** Inputs of {@link resolveDockerEndpoint}; everything defaults to the environment. */
export interface ResolveDockerEndpointOptions {
  /** Like the CLI's `-H`: wins over contexts and `DOCKER_HOST`; TLS still comes from the TLS variables. */
  host?: string;
  /** Like the CLI's `--context`: wins over `DOCKER_HOST` and `DOCKER_CONTEXT`. */
  context?: string;
  /** The environment to read (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** The docker CLI's config directory: `$DOCKER_CONFIG`, else `~/.docker`. */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || join(env.HOME || homedir(), ".docker");
}

function invalidHost(value: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid docker host ${JSON.stringify(value)}: ${why}`, {
    code: ArchiveErrorCode.INVALID_DOCKER_HOST,
    details: { host: value },
  });
}

/**
 * Normalise a `DOCKER_HOST` value as the docker CLI does: empty → the default
 * socket (`tcp://localhost:2376` with TLS); no scheme → `tcp://`; `tcp://`
 * without a port → port 2375 (also with TLS, like the CLI); empty host →
 * `localhost`; `unix://` without a path → `/var/run/docker.sock`. `http://`
 * is accepted as `tcp://` (berth always did; the CLI refuses it).
 * `ssh://`, `npipe://` and `fd://` are returned as given.
 * @throws InvalidArgumentError `ERR_INVALID_DOCKER_HOST` for an unknown scheme or a bad port
 */
export function parseDockerHost(value: string, tls = false): string {
  const v = value.trim();
  if (v === "") return tls ? DEFAULT_DOCKER_TLS_HOST : DEFAULT_DOCKER_HOST;
  const i = v.indexOf("://");
  const proto = i < 0 ? "tcp" : v.slice(0, i).toLowerCase();
  const addr = i < 0 ? v : v.slice(i + 3);
  switch (proto) {
    case "tcp":
    case "http":
      return parseTcp(v, addr);
    case "unix":
      return `unix://${addr || "/var/run/docker.sock"}`;
    case "ssh":
    case "npipe":
    case "fd":
      return v;
    default:
      throw invalidHost(v, "use unix://, tcp:// or ssh://");
  }
}

function parseTcp(value: string, addr: string): string {
  const slash = addr.indexOf("/");
  const hostPort = slash < 0 ? addr : addr.slice(0, slash);
  const path = slash < 0 ? "" : addr.slice(slash);
  let host: string;
  let port = "";
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(hostPort);
  if (v6) {
    host = v6[1]!;
    port = v6[2] ?? "";
  } else if (hostPort.split(":").length === 2) {
    [host, port] = hostPort.split(":") as [string, string];
  } else {
    host = hostPort; // no colon, or a bare IPv6 address
  }
  if (port === "") port = "2375";
  const n = Number(port);
  if (!/^\d+$/.test(port) || n < 1 || n > 65535) throw invalidHost(value, `bad port ${JSON.stringify(port)}`);
  host ||= "localhost";
  return `tcp://${host.includes(":") ? `[${host}]` : host}:${n}${path}`;
}

function readOptional(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw tlsFileError(path, err);
  }
}

function tlsFileError(path: string, cause: unknown): UnavailableError {
  return new UnavailableError(`docker TLS: cannot read ${path}: ${(cause as Error).message}`, {
    code: ArchiveErrorCode.DOCKER_TLS,
    details: { path },
    cause,
  });
}

function readJson(path: string): unknown {
  const text = readFileSync(path, "utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FailedPreconditionError(`${path} is not valid JSON: ${(err as Error).message}`, {
      code: ArchiveErrorCode.DOCKER_CONFIG,
      details: { path },
      cause: err,
    });
  }
}

/** The context the CLI would use: explicit, `default` when a host is set, `DOCKER_CONTEXT`, `currentContext`, `default`. */
function contextName(opts: ResolveDockerEndpointOptions, env: NodeJS.ProcessEnv): string {
  if (opts.context) return opts.context;
  if (opts.host !== undefined || env.DOCKER_HOST) return "default";
  if (env.DOCKER_CONTEXT) return env.DOCKER_CONTEXT;
  const config = join(dockerConfigDir(env), "config.json");
  let doc: unknown;
  try {
    doc = readJson(config);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "default";
    throw err;
  }
  const current = (doc as { currentContext?: unknown } | null)?.currentContext;
  return typeof current === "string" && current !== "" ? current : "default";
}

/**
 * Resolve the daemon address and TLS material the docker CLI would use.
 * Reads small files synchronously (config.json, a context's meta.json, PEM files).
 * @throws InvalidArgumentError `ERR_INVALID_DOCKER_HOST` (bad address, or both `host` and `context` given);
 *   NotFoundError `ERR_DOCKER_CONTEXT_NOT_FOUND`; FailedPreconditionError `ERR_DOCKER_CONFIG`;
 *   UnavailableError `ERR_DOCKER_TLS` (TLS on but `ca.pem` unreadable)
 */
export function resolveDockerEndpoint(opts: ResolveDockerEndpointOptions = {}): DockerEndpoint {
  const env = opts.env ?? process.env;
  if (opts.host !== undefined && opts.context) {
    throw invalidHost(opts.host, `give a host or a context (${JSON.stringify(opts.context)}), not both`);
  }
  const name = contextName(opts, env);
  if (name === "default") return defaultEndpoint(opts.host ?? env.DOCKER_HOST ?? "", env);
  const id = createHash("sha256").update(name).digest("hex");
  const dir = dockerConfigDir(env);
  const metaPath = join(dir, "contexts", "meta", id, "meta.json");
  let meta: unknown;
  try {
    meta = readJson(metaPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    throw new NotFoundError(`docker context ${JSON.stringify(name)} not found (no ${metaPath})`, {
      code: ArchiveErrorCode.DOCKER_CONTEXT_NOT_FOUND,
      details: { context: name, path: metaPath },
    });
  }
  const ep = (meta as { Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } } } | null)?.Endpoints?.docker;
  if (!ep || typeof ep.Host !== "string") {
    throw new FailedPreconditionError(`docker context ${JSON.stringify(name)} has no docker endpoint (${metaPath})`, {
      code: ArchiveErrorCode.DOCKER_CONFIG,
      details: { context: name, path: metaPath },
    });
  }
  const tlsDir = join(dir, "contexts", "tls", id, "docker");
  const ca = readOptional(join(tlsDir, "ca.pem"));
  const cert = readOptional(join(tlsDir, "cert.pem"));
  const key = readOptional(join(tlsDir, "key.pem"));
  const skip = ep.SkipTLSVerify === true;
  const endpoint: DockerEndpoint = { host: parseDockerHost(ep.Host), context: name };
  if (ca || cert || key || skip) {
    endpoint.tls = { verify: !skip, source: tlsDir, ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) };
  }
  return endpoint;
}

/** The `default` context: the host given, with TLS from `DOCKER_TLS_VERIFY` / `DOCKER_TLS` / `DOCKER_CERT_PATH`. */
function defaultEndpoint(host: string, env: NodeJS.ProcessEnv): DockerEndpoint {
  // Like the CLI: any non-empty value turns these on, even "0".
  const verify = (env.DOCKER_TLS_VERIFY ?? "") !== "";
  const on = verify || (env.DOCKER_TLS ?? "") !== "";
  const endpoint: DockerEndpoint = { host: parseDockerHost(host, on), context: "default" };
  if (!on) return endpoint;
  const dir = env.DOCKER_CERT_PATH || dockerConfigDir(env);
  const caPath = join(dir, "ca.pem");
  let ca: Buffer;
  try {
    ca = readFileSync(caPath);
  } catch (err) {
    throw tlsFileError(caPath, err);
  }
  const cert = readOptional(join(dir, "cert.pem"));
  const key = readOptional(join(dir, "key.pem"));
  endpoint.tls = { verify, source: dir, ca, ...(cert && key ? { cert, key } : {}) };
  return endpoint;
}
