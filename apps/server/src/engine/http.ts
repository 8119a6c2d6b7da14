/**
 * Small HTTP helpers shared by the handlers: dockerd's boolean query values,
 * JSON bodies with Content-Length, and the JSON message stream of progress
 * endpoints.
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { InvalidArgumentError } from "@berth/digest";
import { drained } from "@berth/layer-store";
import { EngineErrorCode } from "./errors.js";

/**
 * dockerd's `BoolValue`: true unless missing or one of "", "0", "no",
 * "false", "none" (trimmed, any case).
 */
export function boolValue(query: URLSearchParams, key: string): boolean {
  const v = query.get(key);
  if (v === null) return false;
  return !["", "0", "no", "false", "none"].includes(v.trim().toLowerCase());
}

/** dockerd's `BoolValueOrDefault`: the default when the key is absent. */
export function boolValueOr(query: URLSearchParams, key: string, fallback: boolean): boolean {
  return query.has(key) ? boolValue(query, key) : fallback;
}

/** Send a JSON body (Content-Length set, as dockerd does for bodies it writes at once). */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = `${JSON.stringify(value)}\n`;
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}

/** Send an empty body with a status (e.g. 201 for a tag). */
export function sendEmpty(res: ServerResponse, status: number): void {
  res.statusCode = status;
  res.setHeader("Content-Length", 0);
  res.end();
}

/**
 * A JSON message stream (dockerd's progress format: one JSON object per line,
 * `\r\n`-terminated), started with status 200. Each write is flushed as it
 * comes; `error()` writes the in-stream error dockerd sends once the stream has
 * begun (`{"errorDetail":{"message":…},"error":…}`).
 */
export class JsonMessageStream {
  constructor(private readonly res: ServerResponse) {
    res.statusCode = 200;
    res.setHeader("Content-Type", "application/json");
  }

  /** Write one message. Resolves when the socket took it (back-pressure) or the client left. */
  write(message: Record<string, unknown>): Promise<void> {
    if (this.res.destroyed || this.res.writableEnded) return Promise.resolve();
    const { res } = this;
    if (res.write(`${JSON.stringify(message)}\r\n`)) return Promise.resolve();
    // a client that left never drains: its close ends the wait (later writes are dropped)
    return drained(res).catch(() => {});
  }

  /** Write dockerd's in-stream error message. */
  error(message: string): Promise<void> {
    return this.write({ errorDetail: { message }, error: message });
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }
}

/**
 * A small request body (a JSON document), at most `limit` bytes.
 * @throws InvalidArgumentError `ERR_ENGINE_INVALID_PARAMETER` (400) past the limit, checked against Content-Length first
 */
export async function readSmallBody(req: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const tooLarge = () => new InvalidArgumentError(`${what} is larger than ${limit} bytes`, { code: EngineErrorCode.InvalidParameter });
  if (Number(req.headers["content-length"] ?? 0) > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
