/**
 * The explorer face at `/ui/`: a page (one HTML shell, one stylesheet, one
 * script compiled from `page/app.ts` at build time — nothing fetched from
 * elsewhere, so it works offline) and the JSON endpoints behind it, which
 * scripts may call too (documented in the server README):
 *
 * | path | answer |
 * | --- | --- |
 * | `GET /ui/api/images` | the store's images (`ImageSummary` rows, reduced) |
 * | `GET /ui/api/images/{name}` | `ImageExplanation` of `@berth/image-service` |
 * | `GET /ui/api/images/{name}/layers/{n}[?image=1]` | `LayerView` |
 * | `GET /ui/api/compare?a={name}&b={name}` | `ImageComparison` |
 * | `GET /ui/api/remote/{reference}[?platform=os/arch]` | `ImageExplanation` of an image in a registry (not pulled) |
 * | `GET /ui/api/remote/{reference}/layers/{n}[?image=1][&platform=…]` | `LayerView` of it |
 *
 * `{name}` is any name the store resolves (tag, ID, ID prefix), URL-encoded;
 * `{reference}` a registry reference as `berth pull` takes it
 * (`127.0.0.1:5000/team/app:1`, `app@sha256:…`), URL-encoded. Remote views
 * fetch only the layer blobs whose trees are not cached in the store yet.
 * Errors are `{"code": …, "message": …}` with the status the Engine API
 * face would use for the same error class.
 * @module
 */
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { InvalidArgumentError } from "@berth/digest";
import type { ImageService, RemoteExploreOptions } from "@berth/image-service";
import { type Face, requestContext } from "../context.js";
import { messageOf, statusOf } from "../engine/errors.js";
import { SERVER_ERROR_CODES } from "../errors.js";
import { sendJson } from "../http.js";
import { PAGE_CSS, pageHtml } from "./shell.js";

/** Options of {@link createUiFace}. */
export interface UiFaceOptions {
  /** The image service the endpoints read. */
  service: ImageService;
  /** Registry client options of the remote views (a shared client, `insecure`). Default: a client per request with Docker's credentials. */
  remote?: Pick<RemoteExploreOptions, "client" | "insecure">;
  /** Called for each request that failed with a 5xx (the client gets a generic message). */
  onError?: (err: unknown) => void;
}

/** The compiled page script: beside this module in `dist/`, or in `dist/` when running from the sources. */
async function loadScript(): Promise<Buffer> {
  const candidates = [new URL("./page/app.js", import.meta.url), new URL("../../dist/ui/page/app.js", import.meta.url)];
  for (const url of candidates) {
    const bytes = await readFile(url).catch(() => undefined);
    if (bytes) return bytes;
  }
  throw new Error("the explorer page script is not built (run the server package's build)");
}

/** Headers of every page answer: no third-party anything, no framing. */
const PAGE_HEADERS = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-cache",
};

function send(res: ServerResponse, type: string, body: string | Buffer): void {
  res.writeHead(200, { ...PAGE_HEADERS, "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

function badRequest(message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, { code: SERVER_ERROR_CODES.uiBadRequest });
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw badRequest(`not a URL-encoded name: ${part.slice(0, 100)}`);
  }
}

/** Answer one API path (below `/ui/api/`). */
async function api(service: ImageService, rest: string, query: URLSearchParams, remote: UiFaceOptions["remote"]): Promise<unknown> {
  const parts = rest.split("/");
  if (parts[0] === "remote" && (parts.length === 2 || (parts.length === 4 && parts[2] === "layers"))) {
    const platform = query.get("platform");
    const opts = { ...remote, ...(platform ? { platform } : {}) };
    if (parts.length === 2) return service.explainRemote(decode(parts[1]!), opts);
    if (!/^\d{1,6}$/.test(parts[3]!)) throw badRequest(`layer index ${parts[3]!.slice(0, 20)} is not a number`);
    return service.remoteLayerView(decode(parts[1]!), Number(parts[3]), { ...opts, image: query.get("image") === "1" });
  }
  if (parts[0] === "images" && parts.length === 1) {
    return (await service.list()).map((i) => ({
      id: i.id,
      repoTags: i.repoTags,
      repoDigests: i.repoDigests,
      created: i.created ?? null,
      size: i.image.size,
      layers: i.image.config.rootfs.diff_ids.length,
    }));
  }
  if (parts[0] === "images" && parts.length === 2) return service.explain(decode(parts[1]!));
  if (parts[0] === "images" && parts.length === 4 && parts[2] === "layers") {
    if (!/^\d{1,6}$/.test(parts[3]!)) throw badRequest(`layer index ${parts[3]!.slice(0, 20)} is not a number`);
    return service.layerView(decode(parts[1]!), Number(parts[3]), { image: query.get("image") === "1" });
  }
  if (parts[0] === "compare" && parts.length === 1) {
    const a = query.get("a");
    const b = query.get("b");
    if (!a || !b) throw badRequest("compare needs ?a=IMAGE&b=IMAGE");
    return service.compare(a, b);
  }
  return undefined;
}

/** The explorer face: mount it at `/ui` (see `ServerOptions.ui`). */
export function createUiFace(options: UiFaceOptions): Face {
  let script: Promise<Buffer> | undefined;
  return async (req: IncomingMessage, res: ServerResponse) => {
    const ctx = requestContext(req);
    ctx.face = "ui";
    const url = new URL(req.url ?? "/", "http://ui.invalid");
    const path = url.pathname;
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { Allow: "GET, HEAD", "Content-Length": 0 });
        res.end();
        return;
      }
      if (path === "/ui") {
        res.writeHead(308, { Location: "/ui/", "Content-Length": 0 });
        res.end();
        return;
      }
      if (path === "/ui/") return send(res, "text/html; charset=utf-8", pageHtml());
      if (path === "/ui/app.css") return send(res, "text/css; charset=utf-8", PAGE_CSS);
      if (path === "/ui/app.js") {
        script ??= loadScript();
        return send(res, "text/javascript; charset=utf-8", await script.catch((err) => {
          script = undefined;
          throw err;
        }));
      }
      if (path.startsWith("/ui/api/")) {
        const body = await api(options.service, path.slice("/ui/api/".length), url.searchParams, options.remote);
        if (body !== undefined) return sendJson(res, 200, body, { "Cache-Control": "no-cache" });
      }
      ctx.errorCode = "NOT_FOUND";
      sendJson(res, 404, { code: "NOT_FOUND", message: `no explorer endpoint at ${path.slice(0, 200)}` });
    } catch (err) {
      const status = statusOf(err);
      const code = (err as { code?: unknown }).code;
      ctx.errorCode = typeof code === "string" ? code : "INTERNAL";
      if (status >= 500) {
        ctx.error = err;
        options.onError?.(err);
      }
      if (res.headersSent) res.destroy();
      else sendJson(res, status, { code: ctx.errorCode, message: messageOf(err) });
    }
  };
}
