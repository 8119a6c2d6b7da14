/**
 * The token endpoint of Docker token auth (token mode): `GET <tokenPath>`
 * with Basic credentials (what `docker login`, docker pull/push and skopeo
 * `--creds` send) and `POST <tokenPath>` with an OAuth2 password grant (what
 * containerd and BuildKit try first). It grants the asked scopes that the
 * account's access rules allow, and no others; a request without
 * credentials gets an anonymous token with anonymous rights (as Docker Hub's
 * token service does), wrong credentials a 401.
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type Face, requestContext } from "../context.js";
import { parseBasicAuth, readBody, sendError, sendJson } from "../http.js";
import { RegistryError, toRegistryError } from "../registry/errors.js";
import { type Authorizer, grantScopes } from "./authorizer.js";
import { type Scope, parseScopes } from "./options.js";

const MAX_FORM = 8192;
const BASIC_CHALLENGE = { "WWW-Authenticate": 'Basic realm="berth"' };

/** The token endpoint face of a token-mode authorizer. */
export function tokenFace(auth: Authorizer): Face {
  const { token, htpasswd, rules } = auth;
  if (!token || !htpasswd) throw new Error("tokenFace needs a token-mode authorizer");
  const { authority } = token;

  async function grant(
    req: IncomingMessage,
    res: ServerResponse,
    creds: { user: string; password: string } | undefined,
    params: URLSearchParams,
    oauth: boolean,
  ): Promise<void> {
    const service = params.get("service");
    if (service !== null && service !== authority.service) {
      throw new RegistryError(400, "UNSUPPORTED", `this token endpoint serves service ${JSON.stringify(authority.service)}, not ${JSON.stringify(service)}`);
    }
    let account: string | undefined;
    if (creds) {
      if (!(await htpasswd!.verify(creds.user, creds.password))) {
        throw new RegistryError(401, "UNAUTHORIZED", "invalid username or password", { headers: BASIC_CHALLENGE });
      }
      account = creds.user;
      requestContext(req).user = account;
    }
    // Without credentials: an anonymous token with what anonymous may do (often nothing). A 401
    // here would make docker retry the whole push five times; an empty token fails it at once.
    const asked: Scope[] = params.getAll("scope").flatMap(parseScopes);
    const granted = grantScopes(rules, account, asked);
    const issued = await authority.issue(account, granted);
    const body: Record<string, unknown> = {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
    };
    if (oauth) body.scope = granted.map((s) => `${s.type}:${s.name}:${s.actions.join(",")}`).join(" ");
    sendJson(res, 200, body, { "Cache-Control": "no-store", Pragma: "no-cache" });
  }

  return async (req, res) => {
    const ctx = requestContext(req);
    ctx.face = "token";
    try {
      const url = new URL(req.url ?? "/", "http://x");
      if (req.method === "GET" || req.method === "HEAD") {
        const creds = parseBasicAuth(req.headers.authorization);
        if (creds === null) throw new RegistryError(401, "UNAUTHORIZED", "malformed Basic credentials", { headers: BASIC_CHALLENGE });
        await grant(req, res, creds, url.searchParams, false);
        return;
      }
      if (req.method === "POST") {
        const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
        if (type !== "application/x-www-form-urlencoded") {
          throw new RegistryError(400, "UNSUPPORTED", "the token endpoint takes an application/x-www-form-urlencoded body");
        }
        const form = new URLSearchParams((await readBody(req, MAX_FORM, "token request")).toString("utf8"));
        const grantType = form.get("grant_type");
        if (grantType !== "password") {
          sendJson(res, 400, { error: "unsupported_grant_type", error_description: "only grant_type=password is supported" });
          return;
        }
        const user = form.get("username") ?? "";
        const password = form.get("password") ?? "";
        await grant(req, res, user === "" ? undefined : { user, password }, form, true);
        return;
      }
      throw new RegistryError(405, "UNSUPPORTED", `${req.method} is not allowed on the token endpoint`, { headers: { Allow: "GET, HEAD, POST" } });
    } catch (err) {
      sendError(req, res, toRegistryError(err));
    }
  };
}
