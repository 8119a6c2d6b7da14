/**
 * Test helpers: a berth server over the in-memory backend double, and a small
 * registry client in the manner of the conformance suite's (reggie): paths
 * with `<name>`, relative `Location`s, the spec's error JSON.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningServer, type ServeStoreOptions, type ServerOptions, type ServingStore, serveStore, startServer } from "../src/index.js";
import type { RequestLogEntry } from "../src/log.js";
import { MemoryBackend } from "./memory-backend.js";

/** A berth server on a free loopback port over a fresh MemoryBackend, logging JSON lines into `log`. */
export async function startBerth(options: Partial<ServerOptions> = {}): Promise<{ server: RunningServer; backend: MemoryBackend; log: RequestLogEntry[] }> {
  const backend = new MemoryBackend();
  const log: RequestLogEntry[] = [];
  const server = await startServer({
    port: 0,
    registry: { backend },
    log: { format: "json", write: (line) => log.push(JSON.parse(line) as RequestLogEntry) },
    shutdownGraceMs: 2_000,
    ...options,
  });
  return { server, backend, log };
}

/** `serveStore` (what `berth serve` runs) on a free loopback port over a fresh store root, removed by `close()`. */
export async function startStoreBerth(options: Partial<ServeStoreOptions> = {}): Promise<{ server: ServingStore; root: string; close: () => Promise<void> }> {
  const { dir, cleanup } = tempDir("berth-serve-store-");
  const server = await serveStore({ root: dir, port: 0, sweepIntervalMs: 0, shutdownGraceMs: 2_000, ...options });
  return {
    server,
    root: dir,
    close: async () => {
      await server.close();
      cleanup();
    },
  };
}

/** A temp directory removed by `cleanup()`. */
export function tempDir(prefix = "berth-server-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A response, read whole. */
export interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  /** The parsed JSON body (throws when it is not JSON). */
  json<T = unknown>(): T;
  /** The first error code of a spec error body, if any. */
  errorCode(): string | undefined;
  /** `Location` made relative to the registry (path + query). */
  location(): string;
}

/** Options of one request. */
export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  query?: Record<string, string>;
  /** Repository to put in place of `<name>` (default: the client's). */
  name?: string;
}

/** A registry client for tests. */
export class RegistryClient {
  constructor(
    readonly base: string,
    readonly name: string,
    private readonly defaultHeaders: Record<string, string> = {},
  ) {}

  /** Send `method path` (with `<name>` replaced); `path` may be a relative Location with a query. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
    const url = new URL(path.replaceAll("<name>", options.name ?? this.name), this.base);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    const res = await fetch(url, {
      method,
      headers: { ...this.defaultHeaders, ...options.headers },
      ...(options.body !== undefined ? { body: options.body as unknown as BodyInit } : {}),
      redirect: "manual",
    });
    const body = Buffer.from(await res.arrayBuffer());
    return {
      status: res.status,
      headers: res.headers,
      body,
      json: <T>() => JSON.parse(body.toString("utf8")) as T,
      errorCode: () => {
        try {
          return (JSON.parse(body.toString("utf8")) as { errors?: { code?: string }[] }).errors?.[0]?.code;
        } catch {
          return undefined;
        }
      },
      location: () => {
        const loc = res.headers.get("location") ?? "";
        if (loc === "") return "";
        const u = new URL(loc, url);
        return u.pathname + u.search;
      },
    };
  }

  /** POST an upload session then PUT the whole blob (`?digest=`). */
  async pushBlob(bytes: Uint8Array, digest: string, name?: string): Promise<Reply> {
    const post = await this.request("POST", "/v2/<name>/blobs/uploads/", name ? { name } : {});
    if (post.status !== 202) return post;
    return this.request("PUT", post.location(), {
      query: { digest },
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes,
    });
  }

  /** PUT a manifest under a tag or digest. */
  async pushManifest(reference: string, content: Uint8Array | string, mediaType: string, name?: string): Promise<Reply> {
    return this.request("PUT", `/v2/<name>/manifests/${reference}`, {
      headers: { "Content-Type": mediaType },
      body: content,
      ...(name ? { name } : {}),
    });
  }
}
