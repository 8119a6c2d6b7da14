/**
 * What every handler gets: the request and response, the API version the
 * request is served at, its query, the `{name}` from the path, the image
 * service, the face's options, and an AbortSignal that fires when the client
 * goes away.
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { EngineImageService } from "./service.js";

/** Facts about this berth that `/version`, `/info` and the headers report. */
export interface EngineIdentity {
  /** berth's version (the server package's). */
  version: string;
  /** Git commit berth was built from, when known. */
  gitCommit?: string;
  /** Build time (RFC 3339), when known. */
  buildTime?: string;
}

/** The per-request context. */
export interface EngineContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** The API version served (the path's, else the current one). */
  version: string;
  query: URLSearchParams;
  /** The `{name}` path part (unescaped, may contain `/` and `:`), when the route has one. */
  name: string;
  service: EngineImageService;
  identity: EngineIdentity;
  /** Fires when the client disconnects before the response is complete. */
  signal: AbortSignal;
}

/** A route's handler. */
export type EngineHandler = (ctx: EngineContext) => Promise<void>;
