/**
 * The base layer: one request over `node:http` / `node:https`, streaming
 * both ways.
 *
 * Why node:http and not undici or `fetch`: all three stream a request body of
 * unknown length (chunked) with backpressure and hand the response body over
 * as it arrives, so memory stays flat with any of them; but the undici package
 * costs 0.2–0.5 s of module loading on every process start here (measured on
 * this 2-core machine: `import("undici")` vs `import("node:https")`), which is
 * most of the budget of a CLI's "second push of an unchanged image", while
 * node:http is part of Node itself and loads in milliseconds. Node's global
 * `fetch` loads the same undici lazily and needs web streams plus
 * `duplex: "half"` for a streamed body. The few things undici would give for
 * free are done here: keep-alive pools per origin (`Agent({ keepAlive })`),
 * redirects (followed for GET and HEAD, `Authorization` dropped when the origin
 * changes), header and idle timeouts, and a body source's own error (a digest
 * mismatch) reported as itself rather than as a broken socket.
 * @module
 */
import { Agent as HttpAgent, type ClientRequest, type IncomingMessage, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BerthError } from "@berth/digest";
import { abortedError, protocolError, unreachable } from "../errors.js";
import type { RegistryRequest, RegistryResponse, Transport } from "./types.js";

/** Options of {@link HttpPool}. */
export interface HttpPoolOptions {
  /** Time to wait for response headers, and longest silence while a body streams. Default 300 s. */
  timeoutMs?: number;
  /** Most connections per origin. Default 16. */
  connections?: number;
  /** Redirects followed for GET and HEAD (blob downloads from object storage). Default 5. */
  maxRedirects?: number;
}

/** Network error codes that mean "the connection broke", safe to retry for a replayable request. */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED", "EAI_AGAIN", "ERR_STREAM_PREMATURE_CLOSE"]);

/** The network code an error carries (its own or its cause's). */
export function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const obj = e as { code?: unknown; details?: { network?: unknown }; cause?: unknown };
    if (typeof obj.details?.network === "string") return obj.details.network;
    // errno codes (ECONNRESET) and Node's premature close; not berth's own ERR_* codes
    if (typeof obj.code === "string" && (/^E[A-Z0-9]+$/.test(obj.code) || obj.code === "ERR_STREAM_PREMATURE_CLOSE")) return obj.code;
    e = obj.cause;
  }
  return undefined;
}

/** True when `err` is a connection failure that a retry may cure. */
export function isTransientNetworkError(err: unknown): boolean {
  const code = networkCode(err);
  return code !== undefined && TRANSIENT_NETWORK_CODES.has(code);
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * The connection pools of one client: keep-alive agents for http, for https
 * with verified certificates, and (made on first use) for https without
 * verification, for registries the caller marked insecure.
 */
export class HttpPool {
  private readonly options: HttpPoolOptions;
  private readonly agents = new Map<string, HttpAgent>();

  constructor(options: HttpPoolOptions = {}) {
    this.options = options;
  }

  private agent(protocol: string, tlsVerify: boolean): HttpAgent {
    const key = protocol === "https:" ? `https:${tlsVerify}` : "http:";
    let a = this.agents.get(key);
    if (!a) {
      const common = { keepAlive: true, keepAliveMsecs: 10_000, maxSockets: this.options.connections ?? 16, maxFreeSockets: 8 };
      a = protocol === "https:" ? new HttpsAgent({ ...common, rejectUnauthorized: tlsVerify }) : new HttpAgent(common);
      this.agents.set(key, a);
    }
    return a;
  }

  private send(req: RegistryRequest, url: URL, tlsVerify: boolean): Promise<IncomingMessage> {
    if (url.protocol !== "http:" && url.protocol !== "https:") return Promise.reject(protocolError(`cannot fetch ${url.href}: not http(s)`));
    const headers: Record<string, string> = { ...req.headers };
    const body = req.body;
    if (body instanceof Uint8Array) headers["content-length"] = String(body.length);
    else if (body?.length !== undefined) headers["content-length"] = String(body.length);
    else if (!body && (req.method === "PUT" || req.method === "POST" || req.method === "PATCH")) headers["content-length"] = "0";
    const timeout = this.options.timeoutMs ?? 300_000;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let bodyError: unknown;
      const r: ClientRequest = (url.protocol === "https:" ? httpsRequest : httpRequest)({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: url.port,
        path: url.pathname + url.search,
        method: req.method,
        headers,
        agent: this.agent(url.protocol, tlsVerify),
        ...(req.signal ? { signal: req.signal } : {}),
      });
      r.setTimeout(timeout, () => r.destroy(Object.assign(new Error(`no answer in ${timeout} ms`), { code: "ETIMEDOUT" })));
      r.once("response", (res) => {
        res.setTimeout(timeout, () => res.destroy(Object.assign(new Error(`body stalled for ${timeout} ms`), { code: "ETIMEDOUT" })));
        resolve(res);
      });
      r.once("error", (err) => reject(bodyError ?? err));
      if (body === undefined) r.end();
      else if (body instanceof Uint8Array) r.end(body);
      else {
        pipeline(Readable.from(body.open()), r).catch((err: unknown) => {
          bodyError = err;
          r.destroy(err as Error);
          reject(err);
        });
      }
    });
  }

  /**
   * The base transport over this pool. `tlsVerify: false` accepts any
   * certificate (docker's insecure registries).
   */
  transport(tlsVerify = true): Transport {
    return async (req: RegistryRequest): Promise<RegistryResponse> => {
      let url = req.url;
      let headers = req.headers;
      for (let hops = 0; ; hops++) {
        let res: IncomingMessage;
        try {
          res = await this.send({ ...req, ...(headers ? { headers } : {}) }, url, tlsVerify);
        } catch (err) {
          if (err instanceof BerthError) throw err; // the body source's own failure (a digest mismatch)
          if (req.signal?.aborted) throw abortedError(`${req.method} ${url.href}`, req.signal.reason);
          const code = networkCode(err);
          throw unreachable(`${req.method} ${url.href}: ${(err as Error).message}`, { cause: err, ...(code !== undefined ? { details: { network: code } } : {}) });
        }
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (REDIRECTS.has(status) && location && (req.method === "GET" || req.method === "HEAD") && hops < (this.options.maxRedirects ?? 5)) {
          res.resume();
          const next = new URL(location, url);
          if (next.origin !== url.origin && headers?.authorization) {
            const { authorization: _dropped, ...rest } = headers;
            headers = rest;
          }
          url = next;
          continue;
        }
        return { status, headers: res.headers as Record<string, string | string[] | undefined>, body: res, url };
      }
    };
  }

  /** Close every idle connection (and stop keeping new ones). */
  async close(): Promise<void> {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}
