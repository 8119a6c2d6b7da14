/**
 * Who is asking, and may they: the registry's access check for the three
 * auth modes. A request states what it needs as scopes (`repository:A:push`,
 * `repository:B:pull` for a mount from B, `registry:catalog:*`); the
 * authorizer answers with an {@link Identity} or throws the 401/403 the
 * spec and Docker's clients expect, with the `WWW-Authenticate` challenge
 * that tells a client where to get credentials for exactly those scopes.
 * @module
 */
import type { IncomingMessage } from "node:http";
import { optionError } from "../errors.js";
import { parseBasicAuth, parseBearer, requestOrigin } from "../http.js";
import { RegistryError } from "../registry/errors.js";
import { Htpasswd } from "./htpasswd.js";
import {
  type AccessRule,
  type Action,
  type AuthOptions,
  DEFAULT_ACCESS,
  type Scope,
  allowedActions,
  checkAccessRules,
  formatScope,
  hasAnyRule,
} from "./options.js";
import { TokenAuthority, type TokenClaims, loadTokenKey } from "./token.js";

/** The caller, once checked. */
export interface Identity {
  /** The account, or undefined (anonymous, or auth off). */
  account: string | undefined;
  /** True when auth is on: blobs are then visible only through repositories they belong to. */
  enforced: boolean;
  /** May these credentials pull from `repository` (mount sources)? */
  canPull(repository: string): boolean;
  /** Should `repository` appear in this caller's catalog? */
  canList(repository: string): boolean;
}

/** The registry's access check. */
export interface Authorizer {
  readonly mode: AuthOptions["mode"];
  /**
   * Check the request's credentials against `needs` (an empty list: any valid
   * credentials, as `GET /v2/` asks).
   * @throws RegistryError 401 UNAUTHORIZED with a challenge, or 403 DENIED
   */
  authorize(req: IncomingMessage, needs: Scope[]): Promise<Identity>;
  /** Token mode: the token endpoint's pieces. */
  readonly token?: { authority: TokenAuthority; path: string };
  /** Basic and token modes: verify htpasswd credentials. */
  readonly htpasswd?: Htpasswd;
  /** The access rules in force. */
  readonly rules: AccessRule[];
}

const OPEN: Identity = { account: undefined, enforced: false, canPull: () => true, canList: () => true };

function unauthorized(message: string, challenge: string, needs: Scope[]): RegistryError {
  const detail = needs.flatMap((n) => n.actions.map((a) => ({ Type: n.type, Class: "", Name: n.name, Action: a })));
  return new RegistryError(401, "UNAUTHORIZED", message, { headers: { "WWW-Authenticate": challenge }, ...(detail.length ? { detail } : {}) });
}

function denied(account: string, needs: Scope[]): RegistryError {
  return new RegistryError(403, "DENIED", `account ${JSON.stringify(account)} may not ${needs.map(formatScope).join(" ")}`, {
    detail: needs.map((n) => ({ Type: n.type, Name: n.name, Action: n.actions.join(",") })),
  });
}

/** Do `granted` actions cover what `need` asks? (`*` in a grant covers everything.) */
function covers(granted: Iterable<string>, need: Scope): boolean {
  const set = new Set(granted);
  return set.has("*") || need.actions.every((a) => set.has(a));
}

/** The actions a set of token scopes grants on one resource. */
function tokenGrants(claims: TokenClaims, type: Scope["type"], name: string): string[] {
  return claims.access.filter((s) => s.type === type && s.name === name).flatMap((s) => s.actions);
}

function basicAuthorizer(htpasswd: Htpasswd, rules: AccessRule[]): Authorizer {
  const challenge = 'Basic realm="berth"';
  const grants = (account: string | undefined, need: Scope): Iterable<string> =>
    need.type === "registry" ? (account !== undefined || hasAnyRule(rules, undefined) ? ["*"] : []) : allowedActions(rules, account, need.name);
  return {
    mode: "basic",
    htpasswd,
    rules,
    async authorize(req, needs) {
      const creds = parseBasicAuth(req.headers.authorization);
      if (creds === null) throw unauthorized("malformed Basic credentials", challenge, needs);
      let account: string | undefined;
      if (creds) {
        if (!(await htpasswd.verify(creds.user, creds.password))) throw unauthorized("invalid username or password", challenge, needs);
        account = creds.user;
      } else if (needs.length === 0) {
        throw unauthorized("authentication required", challenge, needs);
      }
      for (const need of needs) {
        if (covers(grants(account, need), need)) continue;
        if (account === undefined) throw unauthorized("authentication required", challenge, needs);
        throw denied(account, needs);
      }
      const canPull = (repo: string) => allowedActions(rules, account, repo).has("pull");
      return { account, enforced: true, canPull, canList: canPull };
    },
  };
}

function tokenAuthorizer(options: AuthOptions, htpasswd: Htpasswd, rules: AccessRule[]): Authorizer {
  const ttl = options.tokenTtlSeconds ?? 300;
  if (!Number.isInteger(ttl) || ttl < 10 || ttl > 86_400) throw optionError("auth.tokenTtlSeconds", "must be an integer from 10 to 86400");
  const service = options.service ?? "berth";
  if (!/^[\x21-\x7e]{1,255}$/.test(service) || service.includes('"')) throw optionError("auth.service", "must be printable ASCII without quotes");
  const path = options.tokenPath ?? "/token";
  if (!/^\/[A-Za-z0-9._~/-]*$/.test(path) || path.startsWith("/v2")) throw optionError("auth.tokenPath", "must be an absolute path outside /v2/");
  if (options.realm !== undefined && !/^https?:\/\/[^\s"]+$/.test(options.realm)) throw optionError("auth.realm", "must be an absolute http(s) URL");
  const authority = new TokenAuthority(loadTokenKey(options.tokenKey), service, ttl);
  const challengeFor = (req: IncomingMessage, needs: Scope[], error?: string) => {
    const realm = options.realm ?? `${requestOrigin(req)}${path}`;
    let c = `Bearer realm="${realm}",service="${service}"`;
    if (needs.length) c += `,scope="${needs.map(formatScope).join(" ")}"`;
    if (error) c += `,error="${error}"`;
    return c;
  };
  return {
    mode: "token",
    htpasswd,
    rules,
    token: { authority, path },
    async authorize(req, needs) {
      const header = req.headers.authorization;
      const bearer = parseBearer(header);
      if (bearer === undefined) {
        throw unauthorized("authentication required", challengeFor(req, needs), needs);
      }
      const claims = await authority.verify(bearer);
      if (!claims) throw unauthorized("invalid or expired token", challengeFor(req, needs, "invalid_token"), needs);
      for (const need of needs) {
        if (!covers(tokenGrants(claims, need.type, need.name), need)) {
          throw unauthorized("the token does not grant this access", challengeFor(req, needs, "insufficient_scope"), needs);
        }
      }
      return {
        account: claims.account,
        enforced: true,
        canPull: (repo) => covers(tokenGrants(claims, "repository", repo), { type: "repository", name: repo, actions: ["pull"] }),
        canList: (repo) => allowedActions(rules, claims.account, repo).has("pull"),
      };
    },
  };
}

/** Make the authorizer for `options` (undefined or mode `none`: everything allowed). */
export function createAuthorizer(options: AuthOptions | undefined): Authorizer {
  if (!options || options.mode === "none") {
    return { mode: "none", rules: [], authorize: async () => OPEN };
  }
  if (options.mode !== "basic" && options.mode !== "token") throw optionError("auth.mode", `must be none, basic or token, got ${JSON.stringify(options.mode)}`);
  if (!options.htpasswd) throw optionError("auth.htpasswd", `mode ${options.mode} needs an htpasswd file`);
  const htpasswd = Htpasswd.open(options.htpasswd);
  const rules = checkAccessRules(options.access ?? DEFAULT_ACCESS);
  return options.mode === "basic" ? basicAuthorizer(htpasswd, rules) : tokenAuthorizer(options, htpasswd, rules);
}

/** The scopes an account may have out of those asked for (the token endpoint's grant). */
export function grantScopes(rules: readonly AccessRule[], account: string | undefined, asked: Scope[]): Scope[] {
  const out: Scope[] = [];
  for (const s of asked) {
    if (s.type === "registry") {
      if (account !== undefined || hasAnyRule(rules, undefined)) out.push({ type: "registry", name: s.name, actions: ["*"] });
      continue;
    }
    const allowed = allowedActions(rules, account, s.name);
    const wanted: Action[] = s.actions.includes("*") ? [...allowed] : (s.actions.filter((a) => allowed.has(a as Action)) as Action[]);
    const actions = [...new Set(wanted)];
    if (actions.length) out.push({ type: "repository", name: s.name, actions });
  }
  return out;
}
