/**
 * The base layer: one request over undici, streaming both ways.
 *
 * undici (Node's own HTTP/1.1 client, the engine under `fetch`) is used
 * directly, not through `fetch`: `request()` takes a Node `Readable` or async
 * iterable as the body and writes it with backpressure (chunked when the length
 * is unknown, checked against Content-Length when known), gives the response
 * body as a Node `Readable` with a chosen high-water mark, and keeps
 * connections alive per origin. `fetch` needs web streams and `duplex: "half"`
 * for a streamed body and buffers more; `node:http` would need the keep-alive
 * pool, redirects and timeouts written here.
 * @module
 */
import { BerthError } from "@berth/digest";
import { Agent, type Dispatcher, interceptors } from "undici";
import { abortedError, unreachable } from "../errors.js";
import type { RegistryRequest, RegistryResponse, Transport } from "./types.js";

/** Options of {@link HttpPool}. */
export interface HttpPoolOptions {
  /** Read size of response bodies. Default 1 MiB (64 KiB reads cost ~30 % on a loopback registry). */
  highWaterMark?: number;
  /** Time to wait for response headers. Default 120 s. */
  headersTimeoutMs?: number;
  /** Longest silence while a body streams. Default 300 s. */
  bodyTimeoutMs?: number;
  /** Most connections per origin. Default 16. */
  connections?: number;
}

/** Network error codes that mean "the connection broke", safe to retry for a replayable request. */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/** The network code an error carries (its own or its cause's). */
export function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const obj = e as { code?: unknown; details?: { network?: unknown }; cause?: unknown };
    if (typeof obj.details?.network === "string") return obj.details.network;
    // errno codes (ECONNRESET) and undici's (UND_ERR_SOCKET); not berth's own ERR_* codes
    if (typeof obj.code === "string" && (/^E[A-Z0-9]+$/.test(obj.code) || obj.code.startsWith("UND_ERR_"))) return obj.code;
    e = obj.cause;
  }
  return undefined;
}

/** True when `err` is a connection failure that a retry may cure. */
export function isTransientNetworkError(err: unknown): boolean {
  const code = networkCode(err);
  return code !== undefined && TRANSIENT_NETWORK_CODES.has(code);
}

/**
 * The connection pools of one client: one undici Agent that verifies TLS and
 * one (made on first use) that does not, for registries the caller marked
 * insecure. Redirects (blob GETs to object storage) are followed up to 5 times;
 * undici drops `Authorization` when a redirect changes origin.
 */
export class HttpPool {
  private readonly options: HttpPoolOptions;
  private verified: Dispatcher | undefined;
  private unverified: Dispatcher | undefined;
  private readonly agents: Agent[] = [];

  constructor(options: HttpPoolOptions = {}) {
    this.options = options;
  }

  private agent(tlsVerify: boolean): Dispatcher {
    const existing = tlsVerify ? this.verified : this.unverified;
    if (existing) return existing;
    const agent = new Agent({
      connect: { rejectUnauthorized: tlsVerify },
      connections: this.options.connections ?? 16,
      headersTimeout: this.options.headersTimeoutMs ?? 120_000,
      bodyTimeout: this.options.bodyTimeoutMs ?? 300_000,
      keepAliveTimeout: 10_000,
    });
    this.agents.push(agent);
    const d = agent.compose(interceptors.redirect({ maxRedirections: 5 }));
    if (tlsVerify) this.verified = d;
    else this.unverified = d;
    return d;
  }

  /**
   * The base transport over this pool. `tlsVerify: false` accepts any
   * certificate (docker's insecure registries).
   */
  transport(tlsVerify = true): Transport {
    return async (req: RegistryRequest): Promise<RegistryResponse> => {
      const dispatcher = this.agent(tlsVerify);
      const headers: Record<string, string> = { ...req.headers };
      let body: Dispatcher.DispatchOptions["body"];
      if (req.body instanceof Uint8Array) {
        body = req.body;
        headers["content-length"] = String(req.body.length);
      } else if (req.body) {
        body = req.body.open() as Dispatcher.DispatchOptions["body"];
        if (req.body.length !== undefined) headers["content-length"] = String(req.body.length);
      } else if (req.method === "PUT" || req.method === "POST" || req.method === "PATCH") {
        headers["content-length"] = "0";
      }
      try {
        const res = await dispatcher.request({
          origin: req.url.origin,
          path: req.url.pathname + req.url.search,
          method: req.method,
          headers,
          body: body ?? null,
          signal: req.signal,
          highWaterMark: this.options.highWaterMark ?? 1 << 20,
        } as Dispatcher.RequestOptions);
        return {
          status: res.statusCode,
          headers: res.headers as Record<string, string | string[] | undefined>,
          body: res.body,
          url: req.url,
        };
      } catch (err) {
        if (err instanceof BerthError) throw err; // the body source's own failure (a digest mismatch)
        if (req.signal?.aborted) throw abortedError(`${req.method} ${req.url.href}`, req.signal.reason);
        const code = networkCode(err);
        throw unreachable(`${req.method} ${req.url.href}: ${(err as Error).message}`, {
          cause: err,
          ...(code !== undefined ? { details: { network: code } } : {}),
        });
      }
    };
  }

  /** Close every connection. */
  async close(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.close()));
    this.agents.length = 0;
    this.verified = undefined;
    this.unverified = undefined;
  }
}
