/**
 * The auth layers (go-containerregistry `bearer.go`, `basic.go`): what a
 * registry's challenge asks for, added to every request.
 *
 * Bearer: a token per set of scopes, fetched from the challenge's realm —
 * with an identity token (docker's `identitytoken`, an OAuth2 refresh token)
 * by `POST grant_type=refresh_token`, else by `GET ?service=&scope=` with
 * Basic credentials, or anonymously. Tokens are reused per scope set until
 * they expire (`expires_in`, 60 s when absent, renewed 10 s early) and
 * fetched once when requests race. A 401 on a request (expired or revoked
 * token, or a challenge naming more scope) fetches a fresh token for the
 * union of scopes and resends the request once, when its body can be resent.
 * @module
 */
import { FailedPreconditionError } from "@berth/digest";
import { protocolError, REGISTRY_ERROR_CODES, registryError } from "../errors.js";
import { type Challenge, parseChallenges } from "./challenge.js";
import { discard, headerAll, isReplayable, readBody, type RegistryRequest, type RegistryResponse, type Transport } from "./types.js";

/** What may be used to authenticate to a registry (a docker config.json entry). */
export interface Credential {
  username?: string;
  password?: string;
  /** docker's `identitytoken`: an OAuth2 refresh token for the token endpoint. */
  identityToken?: string;
  /** docker's `registrytoken`: a bearer token sent as is. */
  registryToken?: string;
}

/** A token endpoint answer (distribution's token spec). */
interface TokenResponse {
  token?: string;
  access_token?: string;
  expires_in?: number;
  issued_at?: string;
  refresh_token?: string;
}

/** Options of {@link withBearer}. */
export interface BearerOptions {
  /** The ping's Bearer challenge (realm, service). */
  challenge: Challenge;
  credential?: Credential | undefined;
  /** Transport for token requests (retrying, unauthenticated). */
  tokenTransport: Transport;
  /** `client_id` sent with OAuth2 requests. Default `berth`. */
  clientId?: string;
  /** Clock (tests). */
  now?: () => number;
  /** Called after each token fetch (tests, debug logs). */
  onToken?(info: { scopes: readonly string[]; via: "oauth" | "get" }): void;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Union of scopes, merging actions of one resource: `repository:a:pull` + `repository:a:push` → `repository:a:pull,push`. */
export function mergeScopes(...lists: (readonly string[])[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const list of lists) {
    for (const scope of list) {
      const i = scope.lastIndexOf(":");
      if (i <= 0) {
        byResource.set(scope, byResource.get(scope) ?? new Set());
        continue;
      }
      const resource = scope.slice(0, i);
      const set = byResource.get(resource) ?? new Set<string>();
      for (const a of scope.slice(i + 1).split(",")) if (a) set.add(a);
      byResource.set(resource, set);
    }
  }
  return [...byResource]
    .map(([r, actions]) => (actions.size ? `${r}:${[...actions].sort().join(",")}` : r))
    .sort();
}

function basicHeader(c: Credential): string | undefined {
  if (c.username === undefined || c.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

function withAuthorization(req: RegistryRequest, value: string): RegistryRequest {
  return { ...req, headers: { ...req.headers, authorization: value } };
}

/** Adds Basic credentials to every request (registries with a Basic challenge). */
export function withBasic(next: Transport, credential: Credential | undefined): Transport {
  const value = credential ? basicHeader(credential) : undefined;
  if (!value) return next;
  return (req) => next(req.headers?.authorization ? req : withAuthorization(req, value));
}

/** Adds Bearer tokens to every request, fetching and refreshing them as described above. */
export function withBearer(next: Transport, options: BearerOptions): Transport {
  const realm = options.challenge.params.realm;
  if (!realm) throw protocolError("Bearer challenge without a realm", { details: { challenge: options.challenge } });
  let realmUrl: URL;
  try {
    realmUrl = new URL(realm);
  } catch (cause) {
    throw protocolError(`Bearer challenge realm ${JSON.stringify(realm)} is not a URL`, { cause });
  }
  if (realmUrl.protocol !== "https:" && realmUrl.protocol !== "http:") {
    throw protocolError(`Bearer challenge realm ${JSON.stringify(realm)} is not http(s)`);
  }
  const now = options.now ?? Date.now;
  const cache = new Map<string, Promise<CachedToken>>();
  let refreshToken = options.credential?.identityToken;
  const service = options.challenge.params.service;

  async function fetchToken(scopes: readonly string[], signal: AbortSignal | undefined): Promise<CachedToken> {
    const registryToken = options.credential?.registryToken;
    if (registryToken) return { token: registryToken, expiresAt: Number.POSITIVE_INFINITY };
    let res: RegistryResponse;
    let via: "oauth" | "get";
    if (refreshToken) {
      via = "oauth";
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: options.clientId ?? "berth" });
      if (service) form.set("service", service);
      if (scopes.length) form.set("scope", scopes.join(" "));
      res = await options.tokenTransport({
        method: "POST",
        url: realmUrl,
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new TextEncoder().encode(form.toString()),
        ...(signal ? { signal } : {}),
      });
    } else {
      via = "get";
      const url = new URL(realmUrl);
      if (service) url.searchParams.set("service", service);
      for (const s of scopes) url.searchParams.append("scope", s);
      const headers: Record<string, string> = {};
      const basic = options.credential ? basicHeader(options.credential) : undefined;
      if (basic) {
        headers.authorization = basic;
        url.searchParams.set("account", options.credential!.username!);
      }
      res = await options.tokenTransport({ method: "GET", url, headers, ...(signal ? { signal } : {}) });
    }
    const bytes = await readBody(res, 1 << 20);
    if (res.status !== 200) {
      if (res.status === 401 || res.status === 403) {
        throw new FailedPreconditionError(
          `token endpoint ${realmUrl.origin}${realmUrl.pathname} refused ${options.credential ? "the credentials" : "anonymous access"} (HTTP ${res.status})`,
          { code: REGISTRY_ERROR_CODES.UNAUTHORIZED, details: { status: res.status, scopes } },
        );
      }
      throw new FailedPreconditionError(`token endpoint ${realmUrl.href} answered HTTP ${res.status}`, {
        code: REGISTRY_ERROR_CODES.TOKEN,
        details: { status: res.status, scopes },
      });
    }
    let parsed: TokenResponse;
    try {
      parsed = JSON.parse(new TextDecoder().decode(bytes)) as TokenResponse;
    } catch (cause) {
      throw new FailedPreconditionError(`token endpoint ${realmUrl.href} answered invalid JSON`, { code: REGISTRY_ERROR_CODES.TOKEN, cause });
    }
    const token = parsed?.token || parsed?.access_token;
    if (typeof token !== "string" || token === "") {
      throw new FailedPreconditionError(`token endpoint ${realmUrl.href} answered without a token`, { code: REGISTRY_ERROR_CODES.TOKEN });
    }
    if (typeof parsed.refresh_token === "string" && parsed.refresh_token !== "" && refreshToken) refreshToken = parsed.refresh_token;
    const seconds = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : 60;
    options.onToken?.({ scopes, via });
    return { token, expiresAt: now() + seconds * 1000 - 10_000 };
  }

  function token(scopes: readonly string[], signal: AbortSignal | undefined, fresh: boolean): Promise<CachedToken> {
    const key = scopes.join(" ");
    const hit = cache.get(key);
    if (hit && !fresh) {
      return hit.then((t) => (t.expiresAt > now() ? t : token(scopes, signal, true)));
    }
    const p = fetchToken(scopes, signal);
    cache.set(key, p);
    p.catch(() => {
      if (cache.get(key) === p) cache.delete(key);
    });
    return p;
  }

  return async (req) => {
    if (req.headers?.authorization) return next(req);
    let scopes = mergeScopes(req.scopes ?? []);
    const first = await token(scopes, req.signal, false);
    const res = await next(withAuthorization(req, `Bearer ${first.token}`));
    if (res.status !== 401 || !isReplayable(req.body)) return res;
    const challenge = parseChallenges(headerAll(res, "www-authenticate")).find((c) => c.scheme === "bearer");
    if (challenge?.params.scope) scopes = mergeScopes(scopes, challenge.params.scope.split(" "));
    await discard(res);
    const fresh = await token(scopes, req.signal, true);
    const again = await next(withAuthorization(req, `Bearer ${fresh.token}`));
    if (again.status === 401) {
      const body = await readBody(again, 64 << 10);
      throw registryError(`${req.method} ${req.url.pathname}: token for ${scopes.join(" ") || "no scope"} refused`, 401, parseErrorBody(body));
    }
    return again;
  };
}

/** The `errors` of a Distribution error body, or [] when the body is not one. */
export function parseErrorBody(bytes: Uint8Array | undefined): { code: string; message?: string; detail?: unknown }[] {
  if (!bytes || bytes.length === 0) return [];
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as { errors?: unknown };
    if (!Array.isArray(v?.errors)) return [];
    return v.errors
      .filter((e): e is { code: string } => typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string")
      .map((e) => {
        const x = e as { code: string; message?: unknown; detail?: unknown };
        return { code: x.code, ...(typeof x.message === "string" ? { message: x.message } : {}), ...(x.detail !== undefined ? { detail: x.detail } : {}) };
      });
  } catch {
    return [];
  }
}
