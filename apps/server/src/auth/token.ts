/**
 * Bearer tokens of Docker token auth: JWTs (HS256, via `jose`) that the token
 * endpoint signs and the registry checks, in one process, with one key.
 *
 * Claims follow the Docker token spec: `iss` and `aud` (the service), `sub`
 * (the account; empty for anonymous), `iat`/`nbf`/`exp`, `jti`, and `access`:
 * `[{ type, name, actions }]`. Tokens from clients are hostile: the length
 * is capped, the algorithm pinned, and signature, issuer, audience, expiry
 * and the shape of `access` are all checked before a token grants anything.
 * @module
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "@berth/digest";
import { SignJWT, jwtVerify } from "jose";
import { SERVER_ERROR_CODES } from "../errors.js";
import type { Scope } from "./options.js";

/** Longest bearer token looked at. */
export const MAX_TOKEN_LENGTH = 8192;
const ISSUER = "berth";
const CLOCK_SKEW_S = 5;

/** What a valid token says. */
export interface TokenClaims {
  /** The account, or undefined for an anonymous token. */
  account: string | undefined;
  /** Granted scopes. */
  access: Scope[];
  /** Expiry, seconds since the epoch. */
  expiresAt: number;
}

/** A token as the token endpoint answers it. */
export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: Date;
}

function keyError(why: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`token key: ${why}`, { code: SERVER_ERROR_CODES.tokenKey, cause });
}

/** The signing key from the option: bytes, text, a file, or 32 random bytes. */
export function loadTokenKey(option: string | Uint8Array | { path: string } | undefined): Uint8Array {
  if (option === undefined) return new Uint8Array(randomBytes(32));
  let key: Uint8Array;
  if (typeof option === "string") key = new TextEncoder().encode(option);
  else if (option instanceof Uint8Array) key = option;
  else {
    try {
      key = new Uint8Array(readFileSync(option.path));
    } catch (cause) {
      throw keyError(`cannot read ${option.path}`, cause);
    }
  }
  if (key.byteLength < 32) throw keyError(`must be at least 32 bytes, got ${key.byteLength}`);
  return key;
}

function isScopeList(v: unknown): v is Scope[] {
  return (
    Array.isArray(v) &&
    v.length <= 64 &&
    v.every(
      (e) =>
        typeof e === "object" &&
        e !== null &&
        (e.type === "repository" || e.type === "registry") &&
        typeof e.name === "string" &&
        Array.isArray(e.actions) &&
        e.actions.every((a: unknown) => typeof a === "string"),
    )
  );
}

/** Signs and verifies the server's bearer tokens. */
export class TokenAuthority {
  private readonly cache = new Map<string, TokenClaims>();

  constructor(
    private readonly key: Uint8Array,
    /** The service name: the tokens' audience. */
    readonly service: string,
    /** Token lifetime, seconds. */
    readonly ttlSeconds: number,
  ) {}

  /** Sign a token for `account` (undefined: anonymous) granting `access`. */
  async issue(account: string | undefined, access: Scope[]): Promise<IssuedToken> {
    const issuedAt = new Date();
    const iat = Math.floor(issuedAt.getTime() / 1000);
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer(ISSUER)
      .setAudience(this.service)
      .setSubject(account ?? "")
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + this.ttlSeconds)
      .setJti(randomBytes(12).toString("base64url"))
      .sign(this.key);
    return { token, expiresIn: this.ttlSeconds, issuedAt };
  }

  /** The claims of a valid token, or undefined for any token that is not one of ours, alive, for this service. */
  async verify(token: string): Promise<TokenClaims | undefined> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return undefined;
    const now = Date.now() / 1000;
    const cached = this.cache.get(token);
    if (cached) {
      if (cached.expiresAt > now) return cached;
      this.cache.delete(token);
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: ["HS256"],
        issuer: ISSUER,
        audience: this.service,
        clockTolerance: CLOCK_SKEW_S,
        maxTokenAge: this.ttlSeconds + CLOCK_SKEW_S,
        requiredClaims: ["exp", "iat", "sub"],
      }));
    } catch {
      return undefined;
    }
    if (!isScopeList(payload.access) || typeof payload.sub !== "string" || typeof payload.exp !== "number") return undefined;
    // A lifetime longer than this authority gives is not one of its tokens.
    if (typeof payload.iat !== "number" || payload.exp - payload.iat > this.ttlSeconds + CLOCK_SKEW_S) return undefined;
    const claims: TokenClaims = {
      account: payload.sub === "" ? undefined : payload.sub,
      access: payload.access,
      expiresAt: payload.exp,
    };
    if (this.cache.size >= 4096) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(token, claims);
    return claims;
  }
}
