/**
 * The berth extension of the Engine API for the negotiated incremental load
 * (protocol in `@berth/docker-archive`'s `berth-api.ts`): `POST
 * /berth/v1/layers/lookup` answers which layers the store has and holds them
 * under a lease; `POST /images/load?berth-lease=` (in `archive.ts`) names it.
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";
import { MAX_LOOKUP_CHAINS } from "@berth/docker-archive";
import type { EngineContext } from "./context.js";
import { EngineErrorCode } from "./errors.js";
import { readSmallBody, sendJson } from "./http.js";

/** Largest lookup body: {@link MAX_LOOKUP_CHAINS} quoted digests and their commas, with room for whitespace. */
const MAX_LOOKUP_BODY = MAX_LOOKUP_CHAINS * 80 + 1024;

/** `POST /berth/v1/layers/lookup` with `{"chainIDs": [...]}`. */
export async function lookupLayers(ctx: EngineContext): Promise<void> {
  const body = await readSmallBody(ctx.req, MAX_LOOKUP_BODY, "the lookup body");
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString("utf8"));
  } catch {
    throw invalidBody("the body is not JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw invalidBody('the body must be an object {"chainIDs": [...]}');
  sendJson(ctx.res, 200, await ctx.service.lookupLayers((doc as { chainIDs?: unknown }).chainIDs));
}

function invalidBody(message: string): InvalidArgumentError {
  return new InvalidArgumentError(`layer lookup: ${message}`, { code: EngineErrorCode.InvalidParameter });
}
