/**
 * The shape every transport layer shares: a function from a request to a
 * response (go-containerregistry's `http.RoundTripper`), so layers wrap each
 * other: `withUserAgent(withRetry(withBearer(http, …)))`.
 * @module
 */
import type { Readable } from "node:stream";

/** HTTP methods the Distribution protocol uses. */
export type HttpMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * A request body that can be opened again (a thunk, so a retry or an auth
 * refresh can resend it). `replayable: false` marks a body that must be sent
 * at most once (a one-shot stream): layers never resend it.
 */
export interface BodySource {
  /** Opens the bytes to send; called once per attempt. */
  open(): Readable | AsyncIterable<Uint8Array>;
  /** Exact length, sent as Content-Length; without it the body goes chunked. */
  length?: number;
  /** Default true. */
  replayable?: boolean;
}

/** A request body: bytes (always replayable) or a {@link BodySource}. */
export type RequestBody = Uint8Array | BodySource;

/** One request to a registry. */
export interface RegistryRequest {
  method: HttpMethod;
  url: URL;
  /** Header names in lower case. */
  headers?: Record<string, string>;
  body?: RequestBody;
  signal?: AbortSignal;
  /**
   * The token scopes this request needs (`repository:team/app:pull,push`);
   * the bearer layer asks for a token covering them.
   */
  scopes?: readonly string[];
}

/** A registry's answer. The body must be consumed or dumped (`res.body.resume()` / {@link discard}). */
export interface RegistryResponse {
  status: number;
  /** Header names in lower case; repeated headers (WWW-Authenticate) as arrays. */
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** The URL that answered (after redirects, when the base layer knows it). */
  url: URL;
}

/** A transport layer: send one request, get its response. */
export type Transport = (req: RegistryRequest) => Promise<RegistryResponse>;

/** A header's value (first one when repeated). */
export function header(res: Pick<RegistryResponse, "headers">, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Every value of a header (WWW-Authenticate may come several times). */
export function headerAll(res: Pick<RegistryResponse, "headers">, name: string): string[] {
  const v = res.headers[name.toLowerCase()];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Drain and drop a response body (frees the connection). Never throws. */
export async function discard(res: RegistryResponse): Promise<void> {
  const body = res.body;
  if (body.destroyed || body.readableEnded) return;
  await new Promise<void>((resolve) => {
    body.once("close", resolve);
    body.once("end", resolve);
    body.once("error", () => resolve());
    body.resume();
  });
}

/** Read a (small) response body whole; past `max` bytes the stream is destroyed and `undefined` returned. */
export async function readBody(res: RegistryResponse, max: number): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > max) {
      res.body.destroy();
      return undefined;
    }
    chunks.push(c as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks, n));
}

/** True when a body may be sent again (no body, bytes, or a replayable source). */
export function isReplayable(body: RequestBody | undefined): boolean {
  return body === undefined || body instanceof Uint8Array || body.replayable !== false;
}
