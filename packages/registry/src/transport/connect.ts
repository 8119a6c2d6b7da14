/**
 * One registry host's transport, assembled from the layers:
 * `userAgent(auth(retry(http)))`, after a ping that picked the scheme and the
 * auth (go-containerregistry `transport.NewWithContext`).
 * @module
 */
import { type Credential, withBasic, withBearer } from "./auth.js";
import type { HttpPool } from "./http.js";
import { ping, type PingResult } from "./ping.js";
import { type RetryOptions, withRetry } from "./retry.js";
import type { Transport } from "./types.js";
import { withUserAgent } from "./useragent.js";

/** Options of {@link connect}. */
export interface ConnectOptions {
  pool: HttpPool;
  /** `host[:port]` as in image references. */
  host: string;
  /** Try https without verification, then http (loopback hosts always are). */
  insecure: boolean;
  /** Credentials for the host, if any (looked up only when the registry challenges). */
  credential?: () => Promise<Credential | undefined>;
  userAgent?: string;
  retry?: RetryOptions;
  signal?: AbortSignal;
  /** Called after each token fetch. */
  onToken?(info: { scopes: readonly string[]; via: "oauth" | "get" }): void;
}

/** A registry reached: where, how, and the transport to use. */
export interface RegistryConnection {
  host: string;
  /** `https://host` or `http://host`. */
  origin: string;
  ping: PingResult;
  /** The layered transport: requests need absolute URLs under {@link origin}. */
  transport: Transport;
  /** The credential used (undefined: anonymous). */
  credential: Credential | undefined;
}

/** Ping the host and build its layered transport. */
export async function connect(options: ConnectOptions): Promise<RegistryConnection> {
  const secure = withRetry(options.pool.transport(true), options.retry);
  const unverified = withRetry(options.pool.transport(false), options.retry);
  const result = await ping({ host: options.host, insecure: options.insecure, secure, unverified, ...(options.signal ? { signal: options.signal } : {}) });
  const base = result.tlsVerify ? secure : unverified;
  let credential: Credential | undefined;
  let authed: Transport = base;
  if (result.challenge) {
    credential = await options.credential?.();
    if (result.challenge.scheme === "bearer") {
      authed = withBearer(base, {
        challenge: result.challenge,
        credential,
        tokenTransport: withUserAgent(base, options.userAgent),
        ...(options.onToken ? { onToken: options.onToken } : {}),
      });
    } else {
      authed = withBasic(base, credential);
    }
  }
  return {
    host: options.host,
    origin: `${result.protocol}//${options.host}`,
    ping: result,
    transport: withUserAgent(authed, options.userAgent),
    credential,
  };
}
