/**
 * `createEngineApi`: the Docker Engine API face as one node:http request
 * handler. It sets the headers dockerd puts on every response, checks the
 * API version of the path, routes, runs the handler with an AbortSignal tied
 * to the client's connection, and writes errors as dockerd does.
 * @module
 */
import { createRequire } from "node:module";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { EngineContext, EngineIdentity } from "./context.js";
import { statusOf, writeError } from "./errors.js";
import { match } from "./router.js";
import type { EngineImageService } from "./service.js";
import { API_VERSION, effectiveVersion, splitVersion, versionBelow } from "./versions.js";

/** Options of {@link createEngineApi}. */
export interface EngineApiOptions {
  /** The image service the handlers call. */
  service: EngineImageService;
  /** What `/version` and `/info` say about this berth (default: the server package's version). */
  identity?: Partial<EngineIdentity>;
  /** Called once per failed request with a 5xx status (the message sent is generic). */
  onError?: (err: unknown, req: IncomingMessage) => void;
}

/** A node:http request handler. */
export type EngineRequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

function packageVersion(): string {
  try {
    // by the package's own name: the same file whether this module runs from dist/ or bundled into the CLI
    return (createRequire(import.meta.url)("@berth/server/package.json") as { version?: string }).version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/**
 * Create the Engine API face. Mount it for `/_ping`, `/v1.NN/…` and the
 * unversioned Engine paths, on TCP and on a unix socket:
 *
 * ```ts
 * const engine = createEngineApi({ service });
 * http.createServer((req, res) => void engine(req, res)).listen("/run/berth.sock");
 * ```
 */
export function createEngineApi(options: EngineApiOptions): EngineRequestHandler {
  const identity: EngineIdentity = { version: packageVersion(), ...options.identity };
  const server = `berth/${identity.version} (${process.platform})`;
  return async (req, res) => {
    res.setHeader("Server", server);
    res.setHeader("Api-Version", API_VERSION);
    res.setHeader("Ostype", process.platform);
    res.setHeader("Docker-Experimental", "false");
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const { version: pathVersion, path } = splitVersion(decodePath(q < 0 ? url : url.slice(0, q)));
    const abort = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) abort.abort(new Error("client went away"));
    });
    try {
      const version = effectiveVersion(pathVersion);
      const { handler, name } = match(req.method ?? "GET", path);
      const ctx: EngineContext = {
        req,
        res,
        version,
        query: new URLSearchParams(q < 0 ? "" : url.slice(q + 1)),
        name,
        service: options.service,
        identity,
        signal: abort.signal,
      };
      await handler(ctx);
    } catch (err) {
      if (statusOf(err) >= 500) options.onError?.(err, req);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      writeError(res, err, { plainText: pathVersion !== undefined && versionBelow(pathVersion, "1.24") });
    } finally {
      // a handler that did not read the request body: drain it so the connection can be reused
      if (!req.complete) req.resume();
    }
  };
}
