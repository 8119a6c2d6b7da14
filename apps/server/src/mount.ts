/**
 * Which face answers a path (the server's mount table), and the two answers
 * of the server itself: a JSON 404 where nothing is mounted, and a 403 for
 * the faces that are local-only on a TCP listener off loopback.
 * @module
 */
import { type Face, requestContext } from "./context.js";
import { sendJson } from "./http.js";

/** The faces to mount. */
export interface MountOptions {
  registry?: Face;
  token?: { path: string; face: Face };
  engine?: Face;
  ui?: Face;
  /** Serve the engine and ui faces to TCP clients (false off loopback: they have no auth). */
  openFacesOnTcp: boolean;
}

function notFoundFace(): Face {
  return async (req, res) => {
    requestContext(req).errorCode = "NOT_FOUND";
    sendJson(res, 404, { errors: [{ code: "UNSUPPORTED", message: `no endpoint at ${(req.url ?? "").split("?")[0]!.slice(0, 200)}` }] });
  };
}

function localOnlyFace(): Face {
  const message = "this endpoint is served only on the unix socket and on loopback addresses";
  return async (req, res) => {
    requestContext(req).errorCode = "LOCAL_ONLY";
    // `message` for Docker clients, `errors` for registry clients.
    sendJson(res, 403, { message, errors: [{ code: "DENIED", message }] });
  };
}

/**
 * The mount table: `/v2`… → registry, the token path → token endpoint,
 * `/ui`… → page, anything else → Engine API (or a JSON 404).
 */
export function mountTable(options: MountOptions): (path: string, tcp: boolean) => Face {
  const notFound = notFoundFace();
  const localOnly = localOnlyFace();
  return (path, tcp) => {
    if (options.registry && (path === "/v2" || path.startsWith("/v2/"))) return options.registry;
    if (options.token && path === options.token.path) return options.token.face;
    const face = options.ui && (path === "/ui" || path.startsWith("/ui/")) ? options.ui : options.engine;
    if (!face) return notFound;
    return tcp && !options.openFacesOnTcp ? localOnly : face;
  };
}
