/**
 * The options of {@link startServer} (what `berth serve` passes), their
 * defaults, and their validation.
 * @module
 */
import { isIP } from "node:net";
import type { AuthOptions } from "./auth/options.js";
import type { Face } from "./context.js";
import { optionError, unsafeListenError } from "./errors.js";
import type { RegistryBackend } from "./registry/backend.js";

/** Default TCP port (the registry port Docker users know). */
export const DEFAULT_PORT = 5000;
/** Default address: loopback only. */
export const DEFAULT_HOST = "127.0.0.1";

/** Limits on what clients may send, and for how long. */
export interface ServerLimits {
  /** Largest request head (request line + headers), bytes; larger gets 431. Default 16 KiB. */
  maxHeaderSize?: number;
  /** Longest request target (path + query), characters; longer gets 414. Default 8 KiB. */
  maxUrlLength?: number;
  /** Time to receive the whole request head, ms; a slow client is dropped with 408. Default 20 000. */
  headersTimeoutMs?: number;
  /** Time to receive a whole request including its body, ms; 0 = none (bodies can be blobs of many GB). Default 0. */
  requestTimeoutMs?: number;
  /** A connection with no bytes either way for this long is closed, ms. Default 120 000. */
  idleTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open, ms. Default 5 000. */
  keepAliveTimeoutMs?: number;
  /** Upload requests (bodies being received) at once; more get 429 TOOMANYREQUESTS. Default 64. */
  maxConcurrentUploads?: number;
  /** Largest manifest accepted, bytes; larger gets 413. Default 4 MiB (the spec's minimum to support). */
  maxManifestSize?: number;
  /** Most entries in one tags or catalog page (`n` above it is capped and a `Link` header sent). Default 1000. */
  maxPageSize?: number;
  /** Open connections at once per listener; more are refused. Default 4096. */
  maxConnections?: number;
}

/** TLS material: PEM text or bytes, or a path to a PEM file. */
export interface TlsOptions {
  /** Certificate chain (PEM), or `{ path }`. */
  cert: string | Uint8Array | { path: string };
  /** Private key (PEM), or `{ path }`. */
  key: string | Uint8Array | { path: string };
}

/** Where and how requests are logged: one line per request. */
export interface LogOptions {
  /** `text` (default), `json` (one JSON object per line), or `none`. */
  format?: "text" | "json" | "none";
  /** Receives each line (with its newline). Default: `process.stderr.write`. */
  write?: (line: string) => void;
}

/** The registry face. */
export interface RegistryFaceConfig {
  /** The storage (`serveStore`: `StoreRegistryBackend` over the berth store; tests: also a double). */
  backend: RegistryBackend;
  /** Allow DELETE of manifests, tags and blobs. Default true. */
  deleteEnabled?: boolean;
}

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** Address to listen on. Default `127.0.0.1`. Use `--port` 0 for a free port. */
  host?: string;
  /** TCP port. Default 5000; 0 picks a free one (see `RunningServer.port`). */
  port?: number;
  /** Also listen on this unix socket (the Engine API's usual transport). A stale socket file is replaced; a live one is an error. */
  socketPath?: string;
  /** Mode of the socket file. Default 0o660. */
  socketMode?: number;
  /** Serve HTTPS on the TCP listener with this certificate and key. */
  tls?: TlsOptions;
  /** Authentication and authorization (registry and token endpoint). Default: none. */
  auth?: AuthOptions;
  /** Listen off loopback without auth (anyone who reaches it may push and delete). Default false: refused. */
  allowRemoteWithoutAuth?: boolean;
  /** The OCI registry at `/v2/`. */
  registry?: RegistryFaceConfig;
  /** The Docker Engine API face (`/_ping`, `/v1.NN/…`, `/images/…`, and every path no other face claims). */
  engine?: Face;
  /** The explorer page face, at `/ui/`. */
  ui?: Face;
  /** Request limits. */
  limits?: ServerLimits;
  /** Request log. */
  log?: LogOptions;
  /** How long a shutdown waits for requests in flight before aborting them, ms. Default 10 000. */
  shutdownGraceMs?: number;
  /** Stop gracefully on SIGINT/SIGTERM (a second signal stops at once). Default false (the CLI sets it). */
  handleSignals?: boolean;
}

/** Limits with every default filled in. */
export type ResolvedLimits = Required<ServerLimits>;

/** The limits' defaults. */
export const DEFAULT_LIMITS: ResolvedLimits = {
  maxHeaderSize: 16 * 1024,
  maxUrlLength: 8 * 1024,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 0,
  idleTimeoutMs: 120_000,
  keepAliveTimeoutMs: 5_000,
  maxConcurrentUploads: 64,
  maxManifestSize: 4 * 1024 * 1024,
  maxPageSize: 1000,
  maxConnections: 4096,
};

/** Validate and fill in the limits. */
export function resolveLimits(limits: ServerLimits = {}): ResolvedLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(limits) as [keyof ServerLimits, number | undefined][]) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_LIMITS)) throw optionError(`limits.${key}`, "unknown limit");
    const mayBeZero = key === "requestTimeoutMs";
    if (!Number.isSafeInteger(value) || value < 0 || (value === 0 && !mayBeZero)) {
      throw optionError(`limits.${key}`, `must be a ${mayBeZero ? "non-negative" : "positive"} integer, got ${String(value)}`);
    }
    out[key] = value;
  }
  return out;
}

/** True for an address only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h.toLowerCase() === "::ffff:127.0.0.1";
  return false;
}

/** Check the listen options: a valid port, and no off-loopback listening without auth unless allowed. */
export function checkListen(options: ServerOptions): { host: string; port: number } {
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw optionError("port", `must be 0–65535, got ${String(port)}`);
  if (host === "" || /[\s/]/.test(host)) throw optionError("host", `not an address: ${JSON.stringify(host)}`);
  const authOn = options.auth !== undefined && options.auth.mode !== "none";
  if (!isLoopbackHost(host) && !authOn && !options.allowRemoteWithoutAuth) throw unsafeListenError(host);
  return { host, port };
}
