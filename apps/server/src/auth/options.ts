/**
 * Auth options and the access vocabulary: actions, access rules, scopes as
 * the Docker token protocol writes them (`repository:team/app:pull,push`).
 * @module
 */
import { optionError } from "../errors.js";
import { RegistryError } from "../registry/errors.js";
import { isValidRepositoryName } from "../registry/names.js";

/** What may be done to a repository. */
export type Action = "pull" | "push" | "delete";

/** Every action, in the order they are listed. */
export const ACTIONS: readonly Action[] = ["pull", "push", "delete"];

/** Who may do what where. An account's rights are the union of the rules that match it. */
export interface AccessRule {
  /** An htpasswd account name, `*` for any authenticated account, or `anonymous` for requests without credentials. */
  account: string;
  /**
   * Repositories: an exact name, or a pattern where `*` matches within one path
   * component and `**` matches anything (`team/*`, `**`).
   */
  repository: string;
  /** What the matched accounts may do there. */
  actions: Action[];
}

/** Auth of the registry and the token endpoint. */
export interface AuthOptions {
  /**
   * `none`: no credentials (loopback only, unless told otherwise).
   * `basic`: HTTP Basic against the htpasswd file on every request.
   * `token`: Docker token auth; the server's token endpoint takes the htpasswd
   * credentials and issues short-lived bearer tokens scoped to repository and action.
   */
  mode: "none" | "basic" | "token";
  /** htpasswd file (`user:$2y$…` bcrypt lines, as `htpasswd -B` writes). Needed for basic and token. Re-read when it changes. */
  htpasswd?: string;
  /** Who may do what. Default: every authenticated account may pull, push and delete everywhere; anonymous nothing. */
  access?: AccessRule[];
  /** Token mode: the `service` (token audience). Default `berth`. */
  service?: string;
  /** Token mode: the token endpoint's absolute URL in challenges. Default: built from the request's Host and scheme, path {@link tokenPath}. */
  realm?: string;
  /** Token mode: the token endpoint's path. Default `/token`. */
  tokenPath?: string;
  /** Token mode: token lifetime, seconds. Default 300. */
  tokenTtlSeconds?: number;
  /**
   * Token mode: the HMAC key tokens are signed with (≥ 32 bytes), or `{ path }`
   * of a file holding it. Default: random per process (tokens die with it; clients fetch new ones on 401).
   */
  tokenKey?: string | Uint8Array | { path: string };
}

/** A resource and the actions asked for it. */
export interface Scope {
  type: "repository" | "registry";
  /** Repository name, or `catalog` for the registry type. */
  name: string;
  /** Actions (`pull`, `push`, `delete`; `*` for the catalog). */
  actions: string[];
}

/** The default rules: any authenticated account may do everything. */
export const DEFAULT_ACCESS: AccessRule[] = [{ account: "*", repository: "**", actions: ["pull", "push", "delete"] }];

/** The account name of requests without credentials, in rules. */
export const ANONYMOUS = "anonymous";

/** Validate access rules. */
export function checkAccessRules(rules: AccessRule[]): AccessRule[] {
  rules.forEach((rule, i) => {
    if (typeof rule.account !== "string" || rule.account === "") throw optionError(`auth.access[${i}].account`, "must be a non-empty string");
    if (typeof rule.repository !== "string" || !/^[a-z0-9._*/-]+$/.test(rule.repository)) {
      throw optionError(`auth.access[${i}].repository`, `not a repository pattern: ${JSON.stringify(rule.repository)}`);
    }
    if (!Array.isArray(rule.actions) || rule.actions.some((a) => !ACTIONS.includes(a))) {
      throw optionError(`auth.access[${i}].actions`, `must be a list of ${ACTIONS.join(", ")}`);
    }
  });
  return rules;
}

const patternCache = new Map<string, RegExp>();

function patternRegExp(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (!re) {
    const body = pattern
      .split("**")
      .map((part) =>
        part
          .split("*")
          .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
          .join("[^/]*"),
      )
      .join(".*");
    re = new RegExp(`^${body}$`);
    patternCache.set(pattern, re);
  }
  return re;
}

/** The actions `account` (undefined: anonymous) may do on `repository` under `rules`. */
export function allowedActions(rules: readonly AccessRule[], account: string | undefined, repository: string): Set<Action> {
  const out = new Set<Action>();
  for (const rule of rules) {
    const who = account === undefined ? rule.account === ANONYMOUS : rule.account === "*" || rule.account === account;
    if (!who || !patternRegExp(rule.repository).test(repository)) continue;
    for (const a of rule.actions) out.add(a);
  }
  return out;
}

/** True when some rule gives `account` anything at all (used to decide whether anonymous gets a token). */
export function hasAnyRule(rules: readonly AccessRule[], account: string | undefined): boolean {
  return rules.some((r) => (account === undefined ? r.account === ANONYMOUS : r.account === "*" || r.account === account));
}

function badScope(s: string, why: string): RegistryError {
  return new RegistryError(400, "UNSUPPORTED", `invalid scope ${JSON.stringify(s.slice(0, 200))}: ${why}`);
}

/**
 * Parse one `scope` value of the token protocol: space-separated
 * `type:name:actions` entries (`repository:team/app:pull,push`,
 * `registry:catalog:*`). A resource class (`repository(plugin)`) is accepted and ignored.
 * @throws RegistryError 400 for anything else
 */
export function parseScopes(value: string): Scope[] {
  const out: Scope[] = [];
  for (const s of value.split(" ")) {
    if (s === "") continue;
    const first = s.indexOf(":");
    const last = s.lastIndexOf(":");
    if (first <= 0 || last === first) throw badScope(s, "expected type:name:actions");
    const type = s.slice(0, first).replace(/\([a-z0-9]+\)$/, "");
    const name = s.slice(first + 1, last);
    const actions = s
      .slice(last + 1)
      .split(",")
      .filter((a) => a !== "");
    if (type === "repository") {
      if (!isValidRepositoryName(name)) throw badScope(s, "invalid repository name");
      out.push({ type, name, actions });
    } else if (type === "registry") {
      if (name !== "catalog") throw badScope(s, "the only registry resource is catalog");
      out.push({ type, name, actions });
    } else {
      throw badScope(s, `unknown resource type ${JSON.stringify(type)}`);
    }
  }
  return out;
}

/** A scope as the challenge and the token protocol write it. */
export function formatScope(scope: Scope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(",")}`;
}
