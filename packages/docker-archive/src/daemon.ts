/**
 * A small streaming Docker Engine API client (node:http over a unix socket,
 * tcp, or TLS on tcp) and the daemon paths: `loadIntoDaemon` (POST
 * /images/load, optionally incremental) and `pullFromDaemon` (GET /images/get
 * into `load`). The daemon is found as the docker CLI finds it (see
 * `endpoint.ts`: `DOCKER_HOST`, TLS variables, contexts).
 *
 * Nothing here buffers an archive: request bodies are written chunk by chunk
 * with backpressure and a Content-Length computed in advance, responses are
 * read as streams.
 * @module
 */
import { type ClientRequest, type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { type Digest, InvalidArgumentError, UnavailableError, chainIds, isSha256Digest } from "@berth/digest";
import { configDiffIds, parseJsonObject, validateImageConfig } from "@berth/oci";
import { type DockerEndpoint, type DockerTlsOptions, type ResolveDockerEndpointOptions, resolveDockerEndpoint } from "./endpoint.js";
import { BERTH_API_HEADER, LAYER_LOOKUP_PATH, type LayerLookupAnswer, LOAD_LEASE_PARAM } from "./berth-api.js";
import { ArchiveErrorCode } from "./errors.js";
import { type LoadOptions, type LoadResult, load } from "./load.js";
import { planChunks, planSave, type SaveOptions } from "./save.js";
import type { ArchiveStore } from "./store.js";

/** How to reach the daemon (default: what the docker CLI would use, see {@link resolveDockerEndpoint}). */
export interface DockerClientOptions extends ResolveDockerEndpointOptions {
  /** `unix:///var/run/docker.sock`, `tcp://127.0.0.1:2375`, `host:port` (like the CLI's `-H`; TLS still from `DOCKER_TLS_VERIFY`). */
  host?: string;
  /** API version prefix, e.g. `"1.41"` (default: none, the daemon's own version). */
  apiVersion?: string;
  /** An endpoint resolved already (skips resolution; `host`, `context` and `env` are then ignored). */
  endpoint?: DockerEndpoint;
}

/** An error status from the daemon, or no daemon at the address (code `ERR_DAEMON`). */
export class DaemonError extends UnavailableError {
  /** HTTP status code (0 when no answer came, or the daemon reported the error inside a 200 stream). */
  readonly status: number;
  constructor(message: string, status: number, cause?: unknown) {
    super(message, { code: ArchiveErrorCode.DAEMON, details: { status }, cause });
    this.status = status;
  }
}

/** TLS with the daemon failed: the daemon's certificate did not verify, or it refused ours (code `ERR_DOCKER_TLS`). */
export class DockerTlsError extends UnavailableError {
  constructor(message: string, details: Record<string, unknown>, cause?: unknown) {
    super(message, { code: ArchiveErrorCode.DOCKER_TLS, details, cause });
  }
}

/** Node's certificate verification failures (`err.code`); OpenSSL's own start with ERR_SSL_ / ERR_TLS_. */
const CERT_ERRORS = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
]);

function isTlsFailure(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string") return false;
  if (CERT_ERRORS.has(code) || code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_")) return true;
  // OpenSSL errors outside the handshake proper (e.g. "wrong version number" from a plain-HTTP peer) come as EPROTO
  return code === "EPROTO" && /SSL routines/.test((err as Error).message);
}

/**
 * Minimal streaming Engine API client. The constructor resolves the address
 * (no I/O beyond reading small config and PEM files); nothing connects until
 * a request.
 * @throws InvalidArgumentError `ERR_INVALID_DOCKER_HOST`; `ERR_UNSUPPORTED_DOCKER_HOST` for `ssh://`,
 *   `npipe://`, `fd://`; and the errors of {@link resolveDockerEndpoint}
 */
export class DockerClient {
  /** The normalised address, e.g. `unix:///var/run/docker.sock` or `tcp://10.0.0.5:2376`. */
  readonly host: string;
  /** Where the address came from and the TLS used. */
  readonly endpoint: DockerEndpoint;
  readonly #socketPath: string | undefined;
  readonly #hostname: string | undefined;
  readonly #port: number | undefined;
  readonly #tls: DockerTlsOptions | undefined;
  readonly #prefix: string;

  constructor(options: DockerClientOptions = {}) {
    this.endpoint = options.endpoint ?? resolveDockerEndpoint(options);
    this.host = this.endpoint.host;
    const h = this.host;
    let base = "";
    if (h.startsWith("unix://")) {
      this.#socketPath = h.slice("unix://".length);
    } else if (h.startsWith("tcp://")) {
      const u = new URL(h.replace(/^tcp:/, "http:"));
      this.#hostname = u.hostname.replace(/^\[(.*)\]$/, "$1");
      this.#port = Number(u.port || 80);
      base = u.pathname.replace(/\/+$/, "");
      this.#tls = this.endpoint.tls;
    } else {
      const scheme = h.slice(0, Math.max(0, h.indexOf("://")));
      const what = `docker host ${JSON.stringify(h)}${this.endpoint.context !== "default" ? ` (context ${this.endpoint.context})` : ""}`;
      throw new InvalidArgumentError(
        scheme === "ssh"
          ? `${what}: ssh:// is not supported yet; forward the socket instead ` +
              `(ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST, then DOCKER_HOST=unix:///tmp/docker.sock)`
          : `${what}: ${scheme}:// is not supported (use unix:// or tcp://)`,
        { code: ArchiveErrorCode.UNSUPPORTED_DOCKER_HOST, details: { host: h, context: this.endpoint.context } },
      );
    }
    this.#prefix = base + (options.apiVersion ? `/v${options.apiVersion}` : "");
  }

  #connectionError(method: string, path: string, err: Error): Error {
    const where = `docker daemon at ${this.host}${this.endpoint.context !== "default" ? ` (context ${this.endpoint.context})` : ""}`;
    if (this.#tls && isTlsFailure(err)) {
      const tls = this.#tls;
      const hint = !tls.cert
        ? `; no client certificate was sent (no cert.pem/key.pem in ${tls.source})`
        : tls.verify
          ? `; certificates from ${tls.source}`
          : "";
      return new DockerTlsError(
        `${where}: TLS failed: ${err.message}${hint}`,
        { host: this.host, reason: (err as { code?: unknown }).code, source: tls.source },
        err,
      );
    }
    return new DaemonError(`${where}: ${method} ${path}: ${err.message}`, 0, err);
  }

  /**
   * Send a request; resolves with the response stream once headers arrive.
   * `body` is streamed with backpressure; give `contentLength` when known.
   */
  request(
    method: string,
    path: string,
    opts: {
      body?: AsyncIterable<Uint8Array>;
      contentLength?: number;
      contentType?: string;
      onBytes?: (n: number) => void;
      /** Give up when no connection or answer comes for this long (DaemonError, status 0). */
      timeoutMs?: number;
    } = {},
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      // Like the Go client: a placeholder Host over a unix socket, the real address over tcp
      // (TLS checks the daemon's certificate against it).
      const hostHeader = this.#socketPath
        ? "docker"
        : `${this.#hostname!.includes(":") ? `[${this.#hostname}]` : this.#hostname}:${this.#port}`;
      const headers: Record<string, string | number> = { Host: hostHeader };
      if (opts.contentType) headers["Content-Type"] = opts.contentType;
      if (opts.contentLength !== undefined) headers["Content-Length"] = opts.contentLength;
      else if (opts.body) headers["Transfer-Encoding"] = "chunked";
      const common = {
        method,
        path: this.#prefix + path,
        headers,
        // one connection per request: no keep-alive socket outlives the call and holds the process open
        agent: false as const,
      };
      const tls = this.#tls;
      const req: ClientRequest = this.#socketPath
        ? httpRequest({ ...common, socketPath: this.#socketPath })
        : tls
          ? httpsRequest({
              ...common,
              hostname: this.#hostname,
              port: this.#port,
              rejectUnauthorized: tls.verify,
              ...(tls.ca ? { ca: tls.ca } : {}),
              ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
            })
          : httpRequest({ ...common, hostname: this.#hostname, port: this.#port });
      if (opts.timeoutMs !== undefined) {
        req.setTimeout(opts.timeoutMs, () => {
          req.destroy(Object.assign(new Error(`no answer in ${opts.timeoutMs} ms`), { code: "ETIMEDOUT" }));
        });
      }
      let settled = false;
      req.on("response", (res) => {
        settled = true;
        resolve(res);
      });
      req.on("error", (err) => {
        if (!settled) reject(this.#connectionError(method, path, err));
      });
      if (!opts.body) {
        req.end();
        return;
      }
      const body = opts.body;
      (async () => {
        for await (const chunk of body) {
          if (req.destroyed) return;
          opts.onBytes?.(chunk.length);
          if (!req.write(chunk)) {
            await new Promise<void>((res, rej) => {
              const done = () => {
                req.off("drain", done);
                req.off("close", done);
                req.off("error", rej);
                res();
              };
              req.once("drain", done);
              req.once("close", done);
              req.once("error", rej);
            });
          }
        }
        req.end();
      })().catch((err) => {
        req.destroy(err as Error);
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
    });
  }

  /** GET a JSON document; DaemonError on a non-2xx status. */
  async json<T>(path: string): Promise<T> {
    const res = await this.request("GET", path);
    const text = await readText(res);
    if ((res.statusCode ?? 0) >= 300) throw new DaemonError(`GET ${path}: ${res.statusCode} ${errorMessage(text)}`, res.statusCode ?? 0);
    return JSON.parse(text) as T;
  }

  /** Whether the daemon has the image `name` (name, ID or ID prefix): `GET /images/{name}/json`. */
  async hasImage(name: string): Promise<boolean> {
    const res = await this.request("GET", `/images/${encodeURIComponent(name)}/json`);
    const text = await readText(res);
    if (res.statusCode === 404) return false;
    if ((res.statusCode ?? 0) >= 300) throw new DaemonError(`inspect ${name}: ${res.statusCode} ${errorMessage(text)}`, res.statusCode ?? 0);
    return true;
  }

  /**
   * `docker rmi` in the daemon: `DELETE /images/{name}`. Resolves with the
   * daemon's report (`{ Untagged }` / `{ Deleted }` items).
   * @throws DaemonError with the daemon's status (404 no such image, 409 conflict)
   */
  async removeImage(name: string, opts: { force?: boolean; noprune?: boolean } = {}): Promise<Array<{ Untagged?: string; Deleted?: string }>> {
    const q = `force=${opts.force === true ? 1 : 0}&noprune=${opts.noprune === true ? 1 : 0}`;
    const res = await this.request("DELETE", `/images/${encodeURIComponent(name)}?${q}`);
    const text = await readText(res);
    if ((res.statusCode ?? 0) >= 300) throw new DaemonError(`remove ${name}: ${res.statusCode} ${errorMessage(text)}`, res.statusCode ?? 0);
    return JSON.parse(text) as Array<{ Untagged?: string; Deleted?: string }>;
  }

  /**
   * Whether a daemon answers `GET /_ping` with 200 OK. Resolves false when
   * nothing answers at the address (no socket, connection refused or reset,
   * no answer within `timeoutMs`, default 10 s) or the answer is not 200.
   * Throws only when talking is impossible for a reason worth fixing.
   * @throws DockerTlsError `ERR_DOCKER_TLS` when the TLS handshake fails (wrong CA, no client certificate)
   */
  async ping(opts: { timeoutMs?: number } = {}): Promise<boolean> {
    let res: IncomingMessage;
    try {
      res = await this.request("GET", "/_ping", { timeoutMs: opts.timeoutMs ?? 10_000 });
    } catch (err) {
      if (err instanceof DaemonError) return false;
      throw err;
    }
    await readText(res);
    return res.statusCode === 200;
  }

  /**
   * The berth API version the daemon speaks (the `Berth-Api` header of
   * `/_ping`, see `berth-api.ts`), or undefined for dockerd and other daemons.
   */
  async berthApi(): Promise<number | undefined> {
    const res = await this.request("GET", "/_ping", { timeoutMs: 10_000 });
    await readText(res);
    const v = Number(res.headers[BERTH_API_HEADER.toLowerCase()]);
    return res.statusCode === 200 && Number.isInteger(v) && v > 0 ? v : undefined;
  }

  /**
   * Ask a berth server which of `chainIDs` it has; it protects those under a
   * lease until a load names it (or the lease expires).
   * @throws DaemonError on a non-2xx status or an answer that is not a lookup answer
   */
  async lookupLayers(chainIDs: readonly Digest[]): Promise<LayerLookupAnswer> {
    const body = Buffer.from(JSON.stringify({ chainIDs }));
    const res = await this.request("POST", LAYER_LOOKUP_PATH, { body: oneChunk(body), contentLength: body.length, contentType: "application/json" });
    const text = await readText(res);
    if ((res.statusCode ?? 0) >= 300) throw new DaemonError(`POST ${LAYER_LOOKUP_PATH}: ${res.statusCode} ${errorMessage(text)}`, res.statusCode ?? 0);
    let answer: Partial<LayerLookupAnswer> = {};
    try {
      answer = JSON.parse(text) as Partial<LayerLookupAnswer>;
    } catch {
      // checked below
    }
    const asked = new Set(chainIDs);
    if (!Array.isArray(answer.present) || !answer.present.every((d) => isSha256Digest(d) && asked.has(d)) || typeof answer.lease !== "string")
      throw new DaemonError(`POST ${LAYER_LOOKUP_PATH}: not a layer lookup answer`, res.statusCode ?? 0);
    return { present: answer.present, lease: answer.lease, expiresInSeconds: Number(answer.expiresInSeconds) || 0 };
  }

  /**
   * Every layer chain the daemon has, as ChainIDs (from the RootFS.Layers of
   * all its images, every prefix of each chain). An image removed between
   * the listing and its inspect (another client's `rmi`) is left out: its
   * layers may be gone with it.
   */
  async layerChains(): Promise<Set<Digest>> {
    const list = await this.json<Array<{ Id: string }>>("/images/json?all=1");
    const out = new Set<Digest>();
    for (const { Id } of list) {
      let inspect: { RootFS?: { Layers?: string[] } };
      try {
        inspect = await this.json<{ RootFS?: { Layers?: string[] } }>(`/images/${encodeURIComponent(Id)}/json`);
      } catch (err) {
        if (err instanceof DaemonError && err.status === 404) continue;
        throw err;
      }
      for (const c of chainIds(inspect.RootFS?.Layers ?? [])) out.add(c);
    }
    return out;
  }
}

async function* oneChunk(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

async function readText(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of res) parts.push(c as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

function errorMessage(text: string): string {
  try {
    const v = JSON.parse(text) as { message?: string };
    return v.message ?? text.trim();
  } catch {
    return text.trim();
  }
}

/** Options of {@link loadIntoDaemon}. */
export interface LoadIntoDaemonOptions extends DockerClientOptions {
  /**
   * Leave out the layers the daemon has already: a berth server is asked
   * (see `berth-api.ts`), dockerd's are listed from its images; if the
   * daemon refuses that archive, the full one is sent.
   */
  incremental?: boolean;
  /** Names to load an image under instead of its store tags (see {@link SaveOptions.repoTags}). */
  repoTags?: Readonly<Record<string, readonly string[]>>;
  /** An existing client to use. */
  client?: DockerClient;
}

/** What {@link loadIntoDaemon} did. */
export interface LoadIntoDaemonResult {
  /** Bytes of archive sent (all attempts). */
  bytesSent: number;
  /** Bytes of the archive that was accepted. */
  archiveSize: number;
  /** Layers left out because the daemon had them. */
  layersSkipped: number;
  /** Layers sent. */
  layersSent: number;
  /** True when the incremental archive was refused and the full one was sent. */
  fellBack: boolean;
  /** True when a berth server was asked which layers it has (`incremental` only). */
  negotiated: boolean;
  /** The ChainIDs the daemon said it has (`incremental` only; empty otherwise). */
  daemonChains: ReadonlySet<Digest>;
  /** The daemon's progress messages (e.g. `Loaded image: busybox:latest`). */
  messages: string[];
}

/**
 * Stream `refs` from the store into a daemon's `POST /images/load`. With
 * `incremental`, layers whose chain the daemon already has are listed in
 * `manifest.json` but not sent (dockerd's loader, and berth's, skip reading a
 * layer whose ChainID they have); a berth server is asked for exactly the
 * images' chains and holds them for the load, dockerd's images are listed.
 * If the daemon refuses that archive, the full one is sent.
 */
export async function loadIntoDaemon(
  store: ArchiveStore,
  refs: string | readonly string[],
  options: LoadIntoDaemonOptions = {},
): Promise<LoadIntoDaemonResult> {
  const list = typeof refs === "string" ? [refs] : refs;
  // The store first: a missing image is ERR_IMAGE_NOT_FOUND whatever state the daemon is in.
  const ids = [];
  for (const ref of list) ids.push(await store.references.resolve(ref));
  const client = options.client ?? new DockerClient(options);
  let bytesSent = 0;
  const attempt = async (omit: ReadonlySet<Digest> | undefined, lease: string | undefined) => {
    // Legacy layout (every daemon reads manifest.json); zstd layers go uncompressed
    // because dockerd before 23 cannot apply them.
    const plan = await planSave(store, list, {
      format: "docker",
      uncompressed: "zstd",
      ...(omit ? { omitChainIDs: omit } : {}),
      ...(options.repoTags ? { repoTags: options.repoTags } : {}),
    });
    const query = lease ? `quiet=1&${LOAD_LEASE_PARAM}=${encodeURIComponent(lease)}` : "quiet=1";
    const res = await client.request("POST", `/images/load?${query}`, {
      body: planChunks(plan),
      contentLength: plan.size,
      contentType: "application/x-tar",
      onBytes: (n) => {
        bytesSent += n;
      },
    });
    const text = await readText(res);
    const messages: string[] = [];
    let error: string | undefined;
    if ((res.statusCode ?? 0) >= 300) error = `${res.statusCode} ${errorMessage(text)}`;
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        const m = JSON.parse(line) as { stream?: string; error?: string; errorDetail?: { message?: string } };
        if (m.error || m.errorDetail) error ??= m.error ?? m.errorDetail?.message;
        if (m.stream) messages.push(m.stream.trim());
      } catch {
        // not JSON lines (an error body); handled by status
      }
    }
    return { plan, error, messages };
  };
  let daemonChains: ReadonlySet<Digest> = new Set();
  let lease: string | undefined;
  let negotiated = false;
  if (options.incremental) {
    if ((await client.berthApi()) !== undefined) {
      const answer = await client.lookupLayers(await imageChains(store, ids));
      daemonChains = new Set(answer.present);
      lease = answer.lease;
      negotiated = true;
    } else {
      daemonChains = await client.layerChains();
    }
  }
  const omit = daemonChains.size > 0 ? daemonChains : undefined;
  let r = await attempt(omit, lease);
  let fellBack = false;
  if (r.error && omit && r.plan.omitted > 0) {
    fellBack = true;
    r = await attempt(undefined, undefined);
  }
  if (r.error) throw new DaemonError(`docker load refused the archive: ${r.error}`, 0);
  return {
    bytesSent,
    archiveSize: r.plan.size,
    layersSkipped: r.plan.omitted,
    layersSent: r.plan.layers - r.plan.omitted,
    fellBack,
    negotiated,
    daemonChains,
    messages: r.messages,
  };
}

/** Every ChainID of the images' layer chains (each once, bottom first per image). */
async function imageChains(store: ArchiveStore, ids: readonly Digest[]): Promise<Digest[]> {
  const out = new Set<Digest>();
  for (const id of ids) {
    const { configBytes } = await store.images.get(id);
    const config = validateImageConfig(parseJsonObject(configBytes, `config ${id}`), `config ${id}`);
    for (const c of chainIds(configDiffIds(config))) out.add(c);
  }
  return [...out];
}

/** Options of {@link pullFromDaemon}. */
export interface PullFromDaemonOptions extends DockerClientOptions, LoadOptions {
  client?: DockerClient;
}

/** `GET /images/get?names=…` from a daemon, streamed into {@link load}. */
export async function pullFromDaemon(
  store: ArchiveStore,
  refs: string | readonly string[],
  options: PullFromDaemonOptions = {},
): Promise<LoadResult> {
  const client = options.client ?? new DockerClient(options);
  const list = typeof refs === "string" ? [refs] : refs;
  const qs = list.map((n) => `names=${encodeURIComponent(n)}`).join("&");
  const res = await client.request("GET", `/images/get?${qs}`);
  if ((res.statusCode ?? 0) >= 300) {
    const text = await readText(res);
    throw new DaemonError(`GET /images/get: ${res.statusCode} ${errorMessage(text)}`, res.statusCode ?? 0);
  }
  try {
    return await load(store, res, options);
  } finally {
    // load stops at the end-of-archive blocks; drop whatever the daemon still sends
    res.destroy();
  }
}
