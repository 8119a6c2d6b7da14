/**
 * The User-Agent layer (go-containerregistry `useragent.go`).
 * @module
 */
import type { Transport } from "./types.js";

/** Default User-Agent: `berth/<version> (registry client)`. */
export const DEFAULT_USER_AGENT = "berth/0.1.0 (+@berth/registry)";

/** Sets `User-Agent` on every request that does not carry one. */
export function withUserAgent(next: Transport, userAgent: string = DEFAULT_USER_AGENT): Transport {
  return (req) => next({ ...req, headers: { "user-agent": userAgent, ...req.headers } });
}
