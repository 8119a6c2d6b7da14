/**
 * The route table of the Engine API face and the matching of a request's
 * method and (version-stripped, unescaped) path against it. Names in paths
 * are greedy (`/images/localhost:5000/x/y:z/json` names
 * `localhost:5000/x/y:z`), as dockerd's `{name:.*}` routes.
 * @module
 */
import { LAYER_LOOKUP_PATH } from "@berth/docker-archive";
import { createImage, loadImages, saveImages } from "./archive.js";
import type { EngineContext, EngineHandler } from "./context.js";
import { imagesOnly, notImplemented, pageNotFound } from "./errors.js";
import { checkAuth, pushImage } from "./distribution.js";
import { lookupLayers } from "./incremental.js";
import { deleteImage, imageHistory, inspectImage, listImages, pruneImages, tagImage } from "./images.js";
import { info, ping, systemDf, version } from "./system.js";

interface Route {
  method: string;
  /** Exact path, or a pattern whose first group is the `{name}`. */
  path: string | RegExp;
  handler: EngineHandler;
}

const refuse =
  (what: string, why: string): EngineHandler =>
  async () => {
    throw notImplemented(what, why);
  };

/** Every endpoint berth serves, in match order (exact paths before name patterns, as dockerd registers them). */
export const ROUTES: readonly Route[] = [
  { method: "GET", path: "/_ping", handler: ping },
  { method: "HEAD", path: "/_ping", handler: ping },
  { method: "GET", path: "/version", handler: version },
  { method: "GET", path: "/info", handler: info },
  { method: "GET", path: "/system/df", handler: systemDf },
  { method: "GET", path: "/images/json", handler: listImages },
  { method: "GET", path: "/images/get", handler: saveImages },
  { method: "GET", path: "/images/search", handler: refuse("image search", "berth searches no registry") },
  { method: "POST", path: "/images/load", handler: loadImages },
  { method: "POST", path: LAYER_LOOKUP_PATH, handler: lookupLayers },
  { method: "POST", path: "/images/prune", handler: pruneImages },
  { method: "POST", path: "/images/create", handler: createImage },
  { method: "POST", path: "/auth", handler: checkAuth },
  { method: "GET", path: /^\/images\/(.*)\/get$/, handler: saveImages },
  { method: "GET", path: /^\/images\/(.*)\/history$/, handler: imageHistory },
  { method: "GET", path: /^\/images\/(.*)\/json$/, handler: inspectImage },
  { method: "POST", path: /^\/images\/(.*)\/push$/, handler: pushImage },
  { method: "POST", path: /^\/images\/(.*)\/tag$/, handler: tagImage },
  { method: "DELETE", path: /^\/images\/(.*)$/, handler: deleteImage },
];

/** Engine API areas that are not about images, by first path segment, with the words the refusal uses. */
const OTHER_OBJECTS: Record<string, string> = {
  containers: "containers",
  exec: "exec sessions",
  commit: "containers (commit)",
  networks: "networks",
  volumes: "volumes",
  build: "builds",
  session: "builds (BuildKit sessions)",
  grpc: "builds (BuildKit)",
  swarm: "swarm",
  services: "swarm services",
  nodes: "swarm nodes",
  tasks: "swarm tasks",
  secrets: "swarm secrets",
  configs: "swarm configs",
  plugins: "plugins",
  distribution: "registry queries (distribution)",
  events: "events",
};

/** The handler for a request, and the `{name}` it carries. */
export interface Match {
  handler: EngineHandler;
  name: string;
}

/**
 * Match `method` + `path` (without the version prefix, unescaped). `OPTIONS`
 * on any path answers 200 (dockerd's CORS preflight handler). A path of
 * another Docker object kind gets the images-only refusal; anything else is
 * dockerd's `page not found` (also for a known path with another method).
 */
export function match(method: string, path: string): Match {
  if (method === "OPTIONS") return { handler: options, name: "" };
  for (const r of ROUTES) {
    if (r.method !== method) continue;
    if (typeof r.path === "string") {
      if (r.path === path) return { handler: r.handler, name: "" };
    } else {
      const m = r.path.exec(path);
      if (m) return { handler: r.handler, name: m[1] ?? "" };
    }
  }
  const first = path.split("/")[1] ?? "";
  const other = OTHER_OBJECTS[first];
  if (other) return { handler: refuseOther(other), name: "" };
  return { handler: notFound, name: "" };
}

const refuseOther =
  (what: string): EngineHandler =>
  async () => {
    throw imagesOnly(what);
  };

async function notFound(): Promise<void> {
  throw pageNotFound();
}

async function options(ctx: EngineContext): Promise<void> {
  ctx.res.statusCode = 200;
  ctx.res.setHeader("Content-Length", 0);
  ctx.res.end();
}
