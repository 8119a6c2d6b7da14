/**
 * What the server knows of one request, shared by the faces and the log:
 * its ID, an AbortSignal that fires when the client goes away or a shutdown
 * stops waiting, and fields the log line reports (who, which face, which
 * error code). Faces keep the `(req, res) => Promise<void>` shape and reach
 * this with {@link requestContext}.
 * @module
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * A face of the server: the registry, the token endpoint, the Docker Engine
 * API, the explorer page. It answers the request completely (or throws, and
 * the server answers 500 if nothing was sent).
 */
export type Face = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** Per-request state. */
export interface RequestContext {
  /** Short random ID, also in the log line. */
  readonly id: string;
  /** Fires when the client disconnects before the answer is complete, or a shutdown gives up waiting. */
  readonly signal: AbortSignal;
  /** `process.hrtime.bigint()` when the request arrived. */
  readonly started: bigint;
  /** Aborts {@link signal} (the server calls it). */
  abort(reason: Error): void;
  /** The authenticated account, once known. */
  user?: string;
  /** The face that answered (`registry`, `token`, `engine`, …). */
  face?: string;
  /** The error code answered, if any (spec code or berth code). */
  errorCode?: string;
  /** The error behind a 5xx answer, for the log (never sent to the client). */
  error?: unknown;
}

const contexts = new WeakMap<IncomingMessage, RequestContext>();

/** Random bytes for request IDs, drawn 6 at a time (one CSPRNG call per 512 requests, not one each). */
let idPool = Buffer.alloc(0);
let idAt = 0;

function newId(): string {
  if (idAt + 6 > idPool.length) {
    idPool = randomBytes(6 * 512);
    idAt = 0;
  }
  idAt += 6;
  return idPool.toString("base64url", idAt - 6, idAt);
}

/** The context of a request, made on first use (so a face works outside `startServer` too). */
export function requestContext(req: IncomingMessage): RequestContext {
  let ctx = contexts.get(req);
  if (!ctx) {
    const controller = new AbortController();
    ctx = {
      id: newId(),
      signal: controller.signal,
      started: process.hrtime.bigint(),
      abort: (reason: Error) => controller.abort(reason),
    };
    contexts.set(req, ctx);
  }
  return ctx;
}
