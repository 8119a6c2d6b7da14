/**
 * Small HTTP helpers the faces share: JSON answers, error answers, bounded
 * body reads, Basic credentials.
 * @module
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { requestContext } from "./context.js";
import { RegistryError } from "./registry/errors.js";

/** Send a JSON body with Content-Length. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** What an error answer still reads (and drops) of a request body left unread: up to this many bytes… */
export const DRAIN_MAX_BYTES = 64 << 20;
/** …for at most this long. */
export const DRAIN_MAX_MS = 10_000;

/**
 * Answer an error as the spec's JSON (once headers are sent, only the
 * connection can be cut). If the request body has not been read (an upload
 * the store refused half-way, say for a full disk), the rest is read and
 * dropped first, up to {@link DRAIN_MAX_BYTES} for {@link DRAIN_MAX_MS}, so
 * a client still writing it gets to read the answer instead of a broken pipe;
 * then the connection is closed after the answer, as it is at once when the
 * rest is larger (gigabytes of an upload nobody wants are not read).
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: RegistryError): void {
  requestContext(req).errorCode = err.code;
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const body = err.body();
  const headers: OutgoingHttpHeaders = { ...err.headers, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) };
  const answer = () => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(err.status, headers);
    res.end(req.method === "HEAD" ? undefined : body);
  };
  if (!hasUnreadBody(req)) {
    answer();
    return;
  }
  headers.Connection = "close";
  drainBody(req, answer);
}

/** Read and drop what is left of `req`'s body (bounded, see {@link sendError}), then call `then` once. */
function drainBody(req: IncomingMessage, then: () => void): void {
  let bytes = 0;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    req.off("data", onData);
    then();
  };
  const onData = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > DRAIN_MAX_BYTES) finish();
  };
  const timer = setTimeout(finish, DRAIN_MAX_MS);
  if (req.destroyed) {
    finish();
    return;
  }
  req.on("data", onData);
  req.once("end", finish);
  req.once("close", finish);
  req.once("error", finish);
  req.resume();
}

/** True when the request has a body (a length above 0, or chunked) that has not been read to its end. */
export function hasUnreadBody(req: IncomingMessage): boolean {
  const len = req.headers["content-length"];
  const chunked = req.headers["transfer-encoding"] !== undefined;
  if (!chunked && (len === undefined || len === "0")) return false;
  return !req.readableEnded;
}

/**
 * Read a whole (small) request body, at most `limit` bytes.
 * @throws RegistryError 413 SIZE_INVALID past the limit (from Content-Length before reading, when given)
 */
export async function readBody(req: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const declared = req.headers["content-length"];
  const tooLarge = () => new RegistryError(413, "SIZE_INVALID", `${what} is larger than the limit of ${limit} bytes`, { detail: { limit } });
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/** Credentials of a Basic `Authorization` header. */
export interface BasicCredentials {
  user: string;
  password: string;
}

/**
 * The credentials of `Authorization: Basic …`: undefined when the header is
 * absent or of another scheme, `null` when it is Basic but malformed.
 */
export function parseBasicAuth(header: string | undefined): BasicCredentials | null | undefined {
  if (header === undefined) return undefined;
  const m = /^basic\s+([A-Za-z0-9+/=]{1,4096})\s*$/i.exec(header);
  if (!m) return /^basic\b/i.test(header) ? null : undefined;
  const text = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon <= 0) return null;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The token of `Authorization: Bearer …`, or undefined. */
export function parseBearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

const HOST_RE = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/**
 * The base URL clients reached this server at (`http://127.0.0.1:5000`), from
 * the Host header when it is a plain host[:port], else the socket's address.
 */
export function requestOrigin(req: IncomingMessage): string {
  const scheme = (req.socket as { encrypted?: boolean }).encrypted ? "https" : "http";
  const host = req.headers.host;
  if (host !== undefined && HOST_RE.test(host)) return `${scheme}://${host}`;
  const addr = req.socket.localAddress ?? "127.0.0.1";
  const shown = addr.includes(":") ? `[${addr}]` : addr;
  return `${scheme}://${shown}:${req.socket.localPort ?? 0}`;
}
