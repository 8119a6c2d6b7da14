/**
 * One log line per request, written when the response is finished or the
 * connection is gone: text (`time remote user "METHOD path" status bytes
 * duration face id [error]`) or one JSON object per line.
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { RequestContext } from "./context.js";
import type { LogOptions } from "./options.js";

/** The fields of a request's log line. */
export interface RequestLogEntry {
  time: string;
  id: string;
  remote: string;
  user: string | null;
  method: string;
  path: string;
  status: number;
  /** Bytes written to the connection for this request (head and body). */
  bytes: number;
  durationMs: number;
  face: string | null;
  /** The error code answered, if any. */
  error: string | null;
  /** For a 5xx: what went wrong inside (never sent to the client). */
  cause?: string;
  /** True when the client went away (or a shutdown cut the request) before the answer was complete. */
  aborted?: boolean;
}

const MAX_PATH = 1024;

/**
 * Builds the entry of a finished request. `conn` is the connection captured
 * when the request came in: by the time a response closes, node may have
 * detached `req.socket` (it is null then).
 */
export function logEntry(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, bytesBefore: number, conn: Socket = req.socket): RequestLogEntry {
  const url = req.url ?? "";
  const entry: RequestLogEntry = {
    time: new Date().toISOString(),
    id: ctx.id,
    remote: conn.remoteAddress ?? "unix",
    user: ctx.user ?? null,
    method: req.method ?? "",
    path: url.length > MAX_PATH ? `${url.slice(0, MAX_PATH)}…` : url,
    status: res.headersSent ? res.statusCode : 0,
    bytes: Math.max(0, (conn.bytesWritten ?? 0) - bytesBefore),
    durationMs: Math.round(Number(process.hrtime.bigint() - ctx.started) / 10_000) / 100,
    face: ctx.face ?? null,
    error: ctx.errorCode ?? null,
  };
  if (ctx.error !== undefined) entry.cause = ctx.error instanceof Error ? `${ctx.error.name}: ${ctx.error.message}` : String(ctx.error);
  if (!res.writableFinished) entry.aborted = true;
  return entry;
}

/** The text form of an entry. */
export function formatText(e: RequestLogEntry): string {
  const path = JSON.stringify(`${e.method} ${e.path}`);
  let line = `${e.time} ${e.remote || "-"} ${e.user ?? "-"} ${path} ${e.status} ${e.bytes} ${e.durationMs}ms ${e.face ?? "-"} id=${e.id}`;
  if (e.error) line += ` error=${e.error}`;
  if (e.aborted) line += " aborted";
  if (e.cause) line += ` cause=${JSON.stringify(e.cause)}`;
  return `${line}\n`;
}

/** The request logger of the options, or undefined when logging is off. */
export function requestLogger(options: LogOptions | undefined): ((entry: RequestLogEntry) => void) | undefined {
  const format = options?.format ?? "text";
  if (format === "none") return undefined;
  const write = options?.write ?? ((line: string) => void process.stderr.write(line));
  return format === "json" ? (e) => write(`${JSON.stringify(e)}\n`) : (e) => write(formatText(e));
}
