/**
 * A small streaming Docker Engine API client (node:http over a unix socket or
 * tcp) and the daemon paths: `loadIntoDaemon` (POST /images/load, optionally
 * incremental) and `pullFromDaemon` (GET /images/get into `load`).
 *
 * Nothing here buffers an archive: request bodies are written chunk by chunk
 * with backpressure and a Content-Length computed in advance, responses are
 * read as streams.
 * @module
 */
import { type IncomingMessage, request as httpRequest } from "node:http";
import { type Digest, InvalidArgumentError, UnavailableError, chainIds } from "@berth/digest";
import { ArchiveErrorCode } from "./errors.js";
import { type LoadOptions, type LoadResult, load } from "./load.js";
import { planChunks, planSave, type SaveOptions } from "./save.js";
import type { ArchiveStore } from "./store.js";

/** How to reach the daemon. */
export interface DockerClientOptions {
  /** `unix:///var/run/docker.sock`, `tcp://127.0.0.1:2375` or `http://…` (default: `DOCKER_HOST`, else the unix socket). */
  host?: string;
  /** API version prefix, e.g. `"1.41"` (default: none, the daemon's own version). */
  apiVersion?: string;
}

/** An error status from the daemon (code `ERR_DAEMON`). */
export class DaemonError extends UnavailableError {
  /** HTTP status code (0 when the daemon reported the error inside a 200 stream). */
  readonly status: number;
  constructor(message: string, status: number, cause?: unknown) {
    super(message, { code: ArchiveErrorCode.DAEMON, details: { status }, cause });
    this.status = status;
  }
}

/** Minimal streaming Engine API client. */
export class DockerClient {
  readonly host: string;
  readonly #socketPath: string | undefined;
  readonly #hostname: string | undefined;
  readonly #port: number | undefined;
  readonly #prefix: string;

  constructor(options: DockerClientOptions = {}) {
    this.host = options.host ?? process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
    this.#prefix = options.apiVersion ? `/v${options.apiVersion}` : "";
    const h = this.host;
    if (h.startsWith("unix://")) {
      this.#socketPath = h.slice("unix://".length);
    } else if (h.startsWith("tcp://") || h.startsWith("http://")) {
      const u = new URL(h.replace(/^tcp:/, "http:"));
      this.#hostname = u.hostname;
      this.#port = Number(u.port || 2375);
    } else {
      throw new InvalidArgumentError(`unsupported DOCKER_HOST ${JSON.stringify(h)} (use unix:// or tcp://)`, {
        code: "ERR_INVALID_DOCKER_HOST",
      });
    }
  }

  /**
   * Send a request; resolves with the response stream once headers arrive.
   * `body` is streamed with backpressure; give `contentLength` when known.
   */
  request(
    method: string,
    path: string,
    opts: { body?: AsyncIterable<Uint8Array>; contentLength?: number; contentType?: string; onBytes?: (n: number) => void } = {},
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { Host: "docker" };
      if (opts.contentType) headers["Content-Type"] = opts.contentType;
      if (opts.contentLength !== undefined) headers["Content-Length"] = opts.contentLength;
      else if (opts.body) headers["Transfer-Encoding"] = "chunked";
      const req = httpRequest({
        method,
        path: this.#prefix + path,
        headers,
        // one connection per request: no keep-alive socket outlives the call and holds the process open
        agent: false,
        ...(this.#socketPath ? { socketPath: this.#socketPath } : { hostname: this.#hostname, port: this.#port }),
      });
      let settled = false;
      req.on("response", (res) => {
        settled = true;
        resolve(res);
      });
      req.on("error", (err) => {
        if (!settled) reject(new DaemonError(`docker daemon at ${this.host}: ${method} ${path}: ${err.message}`, 0, err));
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

  /** `GET /_ping`. */
  async ping(): Promise<boolean> {
    const res = await this.request("GET", "/_ping");
    await readText(res);
    return res.statusCode === 200;
  }

  /**
   * Every layer chain the daemon has, as ChainIDs (from the RootFS.Layers of
   * all its images, every prefix of each chain).
   */
  async layerChains(): Promise<Set<Digest>> {
    const list = await this.json<Array<{ Id: string }>>("/images/json?all=1");
    const out = new Set<Digest>();
    for (const { Id } of list) {
      const inspect = await this.json<{ RootFS?: { Layers?: string[] } }>(`/images/${encodeURIComponent(Id)}/json`);
      for (const c of chainIds(inspect.RootFS?.Layers ?? [])) out.add(c);
    }
    return out;
  }
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
  /** Leave out the layers the daemon has already (falls back to a full archive if refused). */
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
  /** The daemon's progress messages (e.g. `Loaded image: busybox:latest`). */
  messages: string[];
}

/**
 * Stream `refs` from the store into a daemon's `POST /images/load`. With
 * `incremental`, layers whose chain the daemon already has are listed in
 * `manifest.json` but not sent (dockerd's loader skips reading a layer whose
 * ChainID it has); if the daemon refuses that archive, the full one is sent.
 */
export async function loadIntoDaemon(
  store: ArchiveStore,
  refs: string | readonly string[],
  options: LoadIntoDaemonOptions = {},
): Promise<LoadIntoDaemonResult> {
  const client = options.client ?? new DockerClient(options);
  const list = typeof refs === "string" ? [refs] : refs;
  let bytesSent = 0;
  const attempt = async (omit: Set<Digest> | undefined) => {
    // Legacy layout (every daemon reads manifest.json); zstd layers go uncompressed
    // because dockerd before 23 cannot apply them.
    const plan = await planSave(store, list, {
      format: "docker",
      uncompressed: "zstd",
      ...(omit ? { omitChainIDs: omit } : {}),
      ...(options.repoTags ? { repoTags: options.repoTags } : {}),
    });
    const res = await client.request("POST", "/images/load?quiet=1", {
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
  let omit: Set<Digest> | undefined;
  if (options.incremental) omit = await client.layerChains();
  let r = await attempt(omit);
  let fellBack = false;
  if (r.error && omit && r.plan.omitted > 0) {
    fellBack = true;
    r = await attempt(undefined);
  }
  if (r.error) throw new DaemonError(`docker load refused the archive: ${r.error}`, 0);
  return {
    bytesSent,
    archiveSize: r.plan.size,
    layersSkipped: r.plan.omitted,
    layersSent: r.plan.layers - r.plan.omitted,
    fellBack,
    messages: r.messages,
  };
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
