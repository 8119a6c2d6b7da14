/**
 * The registry face: `/v2/…` requests parsed ({@link parseRoute}), checked
 * for method, authorized for exactly the scopes they need, and handed to the
 * handler of their route with typed values. Every failure is answered with
 * the spec's error JSON; a failure that is not the client's is a 500 whose
 * body says nothing more (the log line has it).
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Authorizer } from "../auth/authorizer.js";
import type { Scope } from "../auth/options.js";
import { type Face, type RequestContext, requestContext } from "../context.js";
import { sendError } from "../http.js";
import type { ResolvedLimits } from "../options.js";
import type { RegistryBackend } from "./backend.js";
import { deleteBlob, getBlob } from "./blobs.js";
import type { Call } from "./call.js";
import { RegistryError, toRegistryError } from "./errors.js";
import { listCatalog, listReferrers, listTags } from "./listing.js";
import { deleteManifest, getManifest, putManifest } from "./manifests.js";
import { ROUTE_METHODS, type Route, parseRoute } from "./route.js";
import { cancelUpload, hasBody, mountSource, patchUpload, putUpload, startUpload, uploadStatus } from "./uploads.js";

/** Options of {@link registryFace}. */
export interface RegistryFaceOptions {
  backend: RegistryBackend;
  auth: Authorizer;
  limits: ResolvedLimits;
  deleteEnabled?: boolean;
}

const COMMON_HEADERS = {
  "Docker-Distribution-API-Version": "registry/2.0",
  "X-Content-Type-Options": "nosniff",
};

/** The scopes a request needs. */
function needsOf(route: Route, method: string, query: URLSearchParams): Scope[] {
  switch (route.kind) {
    case "base":
      return [];
    case "catalog":
      return [{ type: "registry", name: "catalog", actions: ["*"] }];
    case "uploads": {
      const needs: Scope[] = [{ type: "repository", name: route.name, actions: ["pull", "push"] }];
      // Validated here, before it can reach a challenge header or the backend.
      const from = query.get("mount") !== null ? mountSource(query) : undefined;
      if (from && from !== route.name) needs.push({ type: "repository", name: from, actions: ["pull"] });
      return needs;
    }
    case "upload":
      return [{ type: "repository", name: route.name, actions: ["pull", "push"] }];
    default: {
      if (method === "DELETE") return [{ type: "repository", name: route.name, actions: ["delete"] }];
      if (method === "PUT") return [{ type: "repository", name: route.name, actions: ["pull", "push"] }];
      return [{ type: "repository", name: route.name, actions: ["pull"] }];
    }
  }
}

async function dispatch(call: Call, route: Route, method: string): Promise<void> {
  const head = method === "HEAD";
  switch (route.kind) {
    case "base":
      call.res.writeHead(200, { "Content-Type": "application/json", "Content-Length": 2 });
      call.res.end(head ? undefined : "{}");
      return;
    case "catalog":
      return listCatalog(call);
    case "tags":
      return listTags(call, route.name);
    case "referrers":
      return listReferrers(call, route.name, route.digest);
    case "blob":
      return method === "DELETE" ? deleteBlob(call, route.name, route.digest) : getBlob(call, route.name, route.digest, head);
    case "manifest":
      if (method === "PUT") return putManifest(call, route.name, route.ref);
      if (method === "DELETE") return deleteManifest(call, route.name, route.ref);
      return getManifest(call, route.name, route.ref, head);
    case "uploads":
      return startUpload(call, route.name);
    case "upload":
      if (method === "PATCH") return patchUpload(call, route.name, route.id);
      if (method === "PUT") return putUpload(call, route.name, route.id);
      if (method === "DELETE") return cancelUpload(call, route.name, route.id);
      return uploadStatus(call, route.name, route.id);
  }
}

/** Is this request an upload that will stream a body into the backend? */
function isUploadBody(call: Call, route: Route): boolean {
  return (route.kind === "upload" || route.kind === "uploads") && hasBody(call);
}

/** The registry face over a backend. */
export function registryFace(options: RegistryFaceOptions): Face {
  const { backend, auth, limits } = options;
  const deleteEnabled = options.deleteEnabled ?? true;
  let uploading = 0;

  return async (req: IncomingMessage, res: ServerResponse) => {
    const ctx: RequestContext = requestContext(req);
    ctx.face = "registry";
    for (const [k, v] of Object.entries(COMMON_HEADERS)) res.setHeader(k, v);
    let counted = false;
    try {
      const method = req.method ?? "GET";
      const url = req.url ?? "/";
      const q = url.indexOf("?");
      const path = q === -1 ? url : url.slice(0, q);
      const query = new URLSearchParams(q === -1 ? "" : url.slice(q + 1));
      const route = parseRoute(method, path);
      const allowed = ROUTE_METHODS[route.kind];
      if (!allowed.includes(method)) {
        throw new RegistryError(405, "UNSUPPORTED", `${method} is not allowed on ${route.kind} endpoints`, { headers: { Allow: allowed.join(", ") } });
      }
      const identity = await auth.authorize(req, needsOf(route, method, query));
      ctx.user = identity.account;
      const call: Call = { req, res, ctx, backend, identity, query, limits, deleteEnabled };
      if (isUploadBody(call, route)) {
        if (uploading >= limits.maxConcurrentUploads) {
          throw new RegistryError(429, "TOOMANYREQUESTS", `too many uploads at once (limit ${limits.maxConcurrentUploads}); retry`, {
            headers: { "Retry-After": "1" },
          });
        }
        uploading++;
        counted = true;
      }
      await dispatch(call, route, method);
    } catch (err) {
      const answer = toRegistryError(err);
      if (answer.status >= 500) ctx.error = err;
      if (res.headersSent || ctx.signal.aborted) {
        ctx.errorCode = answer.code;
        if (!res.writableEnded) res.destroy();
        return;
      }
      sendError(req, res, answer);
    } finally {
      if (counted) uploading--;
    }
  };
}
