/**
 * Content discovery: `GET /v2/<name>/tags/list` and `GET /v2/_catalog` (sorted,
 * paged with `n` and `last`, `Link: <…>; rel="next"` when more follow) and
 * `GET /v2/<name>/referrers/<digest>` (`artifactType` filter,
 * `OCI-Filters-Applied`).
 * @module
 */
import type { Digest } from "@berth/digest";
import { MEDIA_TYPE_OCI_INDEX, isMediaType } from "@berth/oci";
import { sendJson } from "../http.js";
import type { Page } from "./backend.js";
import { type Call, singleParam } from "./call.js";
import { RegistryError } from "./errors.js";

/** `n` and `last` of a list request; `limit` capped at `maxPageSize`, or unbounded when `n` is absent and `defaultAll`. */
export function pageParams(call: Call, defaultAll: boolean): { limit: number; last?: string } {
  const n = singleParam(call.query, "n");
  const last = singleParam(call.query, "last");
  const max = call.limits.maxPageSize;
  let limit: number;
  if (n === undefined || n === "") {
    limit = defaultAll ? Number.MAX_SAFE_INTEGER : max;
  } else {
    if (!/^\d{1,9}$/.test(n)) throw new RegistryError(400, "PAGINATION_NUMBER_INVALID", `invalid n ${JSON.stringify(n.slice(0, 50))}: must be a non-negative integer`);
    limit = Math.min(Number(n), max);
  }
  if (last !== undefined && last.length > 256) throw new RegistryError(400, "PAGINATION_NUMBER_INVALID", "last is longer than 256 characters");
  return { limit, ...(last !== undefined && last !== "" ? { last } : {}) };
}

function linkHeader(path: string, page: Page<string>, limit: number): Record<string, string> {
  const lastItem = page.items[page.items.length - 1];
  if (!page.more || lastItem === undefined || limit === 0) return {};
  return { Link: `<${path}?n=${limit}&last=${encodeURIComponent(lastItem)}>; rel="next"` };
}

/** `GET /v2/<name>/tags/list`. */
export async function listTags(call: Call, name: string): Promise<void> {
  const { limit, last } = pageParams(call, true);
  const page: Page<string> =
    limit === 0 ? { items: [], more: false } : await call.backend.listTags(name, { limit, ...(last !== undefined ? { last } : {}) });
  sendJson(call.res, 200, { name, tags: page.items }, linkHeader(`/v2/${name}/tags/list`, page, limit));
}

/** `GET /v2/_catalog`, showing only repositories the caller may pull. */
export async function listCatalog(call: Call): Promise<void> {
  const { limit, last } = pageParams(call, false);
  const page: Page<string> =
    limit === 0
      ? { items: [], more: false }
      : await call.backend.listRepositories({ limit, ...(last !== undefined ? { last } : {}) }, call.identity.canList);
  sendJson(call.res, 200, { repositories: page.items }, linkHeader("/v2/_catalog", page, limit));
}

/** `GET /v2/<name>/referrers/<digest>`. */
export async function listReferrers(call: Call, name: string, digest: Digest): Promise<void> {
  const artifactType = singleParam(call.query, "artifactType");
  if (artifactType !== undefined && !isMediaType(artifactType)) {
    throw new RegistryError(400, "UNSUPPORTED", `invalid artifactType ${JSON.stringify(String(artifactType).slice(0, 100))}`);
  }
  const result = await call.backend.listReferrers(name, digest, artifactType !== undefined ? { artifactType } : {});
  const headers: Record<string, string> = {};
  if (result.filtersApplied.length) headers["OCI-Filters-Applied"] = result.filtersApplied.join(",");
  const body = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: result.manifests });
  call.res.writeHead(200, { ...headers, "Content-Type": MEDIA_TYPE_OCI_INDEX, "Content-Length": Buffer.byteLength(body) });
  call.res.end(body);
}
