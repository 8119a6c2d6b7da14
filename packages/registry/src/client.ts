/**
 * `RegistryClient`: connections to registry hosts (one ping and one layered
 * transport per host, shared by every repository of that host) and the
 * entry point to repositories.
 * @module
 */
import { type Reference, parseReference } from "@berth/oci";
import { invalidName } from "./errors.js";
import type { Credential } from "./transport/auth.js";
import { connect, type RegistryConnection } from "./transport/connect.js";
import { HttpPool, type HttpPoolOptions } from "./transport/http.js";
import { isLoopbackHost } from "./transport/ping.js";
import type { RetryOptions } from "./transport/retry.js";
import { Repository } from "./repository.js";

/** Looks up the credential for a registry host (`docker.io`, `127.0.0.1:5000`). */
export type CredentialProvider = (host: string) => Promise<Credential | undefined>;

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** Where credentials come from; e.g. `dockerCredentials()` (Docker's config.json). Default: anonymous. */
  credentials?: CredentialProvider;
  /**
   * Hosts reached over https without certificate checks, falling back to
   * plain http (`--insecure`); `true` for every host. Loopback hosts
   * (localhost, 127.0.0.0/8, ::1) always are, as with docker.
   */
  insecure?: boolean | readonly string[];
  userAgent?: string;
  retry?: RetryOptions;
  http?: HttpPoolOptions;
  /** Largest manifest or index read. Default 4 MiB (containerd's and crane's limit). */
  maxManifestSize?: number;
  /** Called after every token fetch (tests and debug logs). */
  onToken?(info: { host: string; scopes: readonly string[]; via: "oauth" | "get" }): void;
}

/** Docker Hub's API host: references say `docker.io`, the API lives here. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

/** The host to talk to for a reference's domain (`docker.io` → `registry-1.docker.io`). */
export function apiHost(domain: string): string {
  return domain === "docker.io" ? DOCKER_HUB_API_HOST : domain;
}

/** Options of {@link RegistryClient.repository}. */
export interface RepositoryOptions {
  /** Ask for push access too (one token for the whole push instead of a pull one, then a push one). */
  push?: boolean;
}

/**
 * A registry client. One per process is enough: it keeps one connection pool
 * and one ping, auth state and token cache per host. `close()` ends the pool.
 */
export class RegistryClient {
  /** The options it was made with. */
  readonly options: RegistryClientOptions;
  /** Default 4 MiB. */
  readonly maxManifestSize: number;
  private readonly pool: HttpPool;
  private readonly connections = new Map<string, Promise<RegistryConnection>>();

  constructor(options: RegistryClientOptions = {}) {
    this.options = options;
    this.maxManifestSize = options.maxManifestSize ?? 4 << 20;
    this.pool = new HttpPool(options.http);
  }

  /** True when `host` is reached without TLS verification (and with http as fallback). */
  isInsecure(host: string): boolean {
    const i = this.options.insecure;
    return isLoopbackHost(host) || i === true || (Array.isArray(i) && i.includes(host));
  }

  /** The connection to a host (pinged once; a failed ping is tried again on the next call). */
  connection(host: string, signal?: AbortSignal): Promise<RegistryConnection> {
    const key = apiHost(host);
    let c = this.connections.get(key);
    if (!c) {
      const credentialHost = host;
      c = connect({
        pool: this.pool,
        host: key,
        insecure: this.isInsecure(key),
        credential: async () => this.options.credentials?.(credentialHost),
        ...(this.options.userAgent ? { userAgent: this.options.userAgent } : {}),
        ...(this.options.retry ? { retry: this.options.retry } : {}),
        ...(signal ? { signal } : {}),
        ...(this.options.onToken ? { onToken: (info) => this.options.onToken?.({ host: key, ...info }) } : {}),
      });
      this.connections.set(key, c);
      c.catch(() => {
        if (this.connections.get(key) === c) this.connections.delete(key);
      });
    }
    return c;
  }

  /** Forget a host's connection (after a login, to pick up new credentials). */
  forget(host: string): void {
    this.connections.delete(apiHost(host));
  }

  /**
   * A repository: `client.repository("127.0.0.1:5000/team/app")`, or a parsed
   * reference (its tag and digest are ignored).
   * @throws InvalidArgumentError `ERR_INVALID_NAME` for a name that is no repository
   */
  repository(name: string | Reference, options: RepositoryOptions = {}): Repository {
    let ref: Reference;
    try {
      ref = typeof name === "string" ? parseReference(name, { defaultTag: false }) : name;
    } catch (cause) {
      throw invalidName(`invalid repository name ${JSON.stringify(name)}`, { cause });
    }
    if (typeof name === "string" && (ref.tag !== undefined || ref.digest !== undefined)) {
      throw invalidName(`repository name ${JSON.stringify(name)} must not have a tag or digest (use parseReference)`);
    }
    return new Repository(this, ref.domain, ref.path, options);
  }

  /** Close every connection. */
  async close(): Promise<void> {
    this.connections.clear();
    await this.pool.close();
  }
}
