/**
 * What every registry handler is given: the request and response, the
 * backend, the checked caller, the query, the limits, and a few shared
 * answers (headers every `/v2/` response carries, the blob scope).
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Identity } from "../auth/authorizer.js";
import type { RequestContext } from "../context.js";
import type { ResolvedLimits } from "../options.js";
import type { BlobScope, RegistryBackend } from "./backend.js";
import { RegistryError } from "./errors.js";

/** One registry request, parsed and authorized. */
export interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  ctx: RequestContext;
  backend: RegistryBackend;
  identity: Identity;
  query: URLSearchParams;
  limits: ResolvedLimits;
  deleteEnabled: boolean;
}

/** The blob scope of a request on `repository` (members only when auth is on). */
export function blobScope(call: Call, repository: string): BlobScope {
  return { repository, membersOnly: call.identity.enforced };
}

/** Answer with no body (`Content-Length: 0`, except on 204 and 304, which must not carry one). */
export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string | number>): void {
  res.writeHead(status, status === 204 || status === 304 ? headers : { ...headers, "Content-Length": 0 });
  res.end();
}

/** The 405 for deletes when they are turned off (the spec allows 400 or 405). */
export function deleteDisabled(): RegistryError {
  return new RegistryError(405, "UNSUPPORTED", "deletes are disabled on this registry", { headers: { Allow: "GET, HEAD" } });
}

/** A query parameter that must appear at most once. @throws RegistryError 400 */
export function singleParam(query: URLSearchParams, key: string): string | undefined {
  const all = query.getAll(key);
  if (all.length > 1) throw new RegistryError(400, "UNSUPPORTED", `query parameter ${key} given ${all.length} times`);
  return all[0];
}
