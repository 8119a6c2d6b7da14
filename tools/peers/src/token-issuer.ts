/**
 * A Docker registry token issuer (the distribution "token" auth spec) that
 * Debian's docker-registry (distribution 2.8) trusts: it signs ES256 JWTs
 * whose `x5c` header carries a self-signed certificate, and the registry's
 * `auth.token.rootcertbundle` is that certificate (distribution's
 * `registry/auth/token`: the chain is verified against the bundle, then
 * `iss`, `aud` = the service, `exp`/`nbf` and the `access` claim).
 *
 * Endpoints (one realm, `<url>/token`):
 * - `GET ?service=&scope=…&account=` with Basic credentials, or none
 *   (anonymous); `offline_token=true` adds a refresh token;
 * - `POST` form `grant_type=password` (username, password) or
 *   `grant_type=refresh_token` (refresh_token), `access_type=offline` adds a
 *   refresh token — what `docker login` and clients with an identity token send.
 *
 * Policy: a known user gets every action asked for; an anonymous caller gets
 * `pull` when `anonymousPull` (default true), else an empty grant. Wrong
 * credentials get 401. Every request is recorded in `requests`.
 * @module
 */
import { randomBytes, sign, X509Certificate } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requirePeer } from "./commands.js";
import { execOk } from "./exec.js";

/** Options of {@link tokenIssuer}. */
export interface TokenIssuerOptions {
  /** username → password. Default `{ berth: "berth-secret" }`. */
  users?: Record<string, string>;
  /** Give anonymous callers pull access. Default true. */
  anonymousPull?: boolean;
  /** The registry's service name (the `aud` claim). Default `berth-test-registry`. */
  service?: string;
  /** The `iss` claim. Default `berth-test-issuer`. */
  issuer?: string;
  /** Token lifetime. Default 300 s. */
  expiresInSec?: number;
}

/** One request the issuer answered. */
export interface TokenRequestRecord {
  method: "GET" | "POST";
  /** `basic` (GET with credentials), `anonymous`, `password` or `refresh_token` (POST). */
  grant: "basic" | "anonymous" | "password" | "refresh_token";
  account: string | undefined;
  scopes: string[];
  status: number;
}

/** A running token issuer. */
export interface TokenIssuer {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `<url>/token`: the registry's `auth.token.realm`. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate the registry trusts (`rootcertbundle`). */
  certFile: string;
  users: Record<string, string>;
  /** Every request answered, in order. */
  requests: TokenRequestRecord[];
  /** Stops the server and removes the key material. Idempotent. */
  stop(): Promise<void>;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** Parse `type:name:actions` (the name may contain colons). */
function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last <= first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(",").filter(Boolean) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > 64 << 10) throw new Error("body too large");
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Start a token issuer on 127.0.0.1 (a free port). Needs `openssl` (a peer)
 * to make its certificate; returns undefined when openssl is missing and peers
 * are not required.
 */
export async function tokenIssuer(options: TokenIssuerOptions = {}): Promise<TokenIssuer | undefined> {
  const openssl = await requirePeer("openssl");
  if (!openssl) return undefined;
  const dir = await mkdtemp(join(tmpdir(), "berth-token-issuer-"));
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  await execOk(openssl, [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=berth-test-token-issuer",
  ]);
  const key = await readFile(keyFile, "utf8");
  const certDer = new X509Certificate(await readFile(certFile)).raw;
  const users = options.users ?? { berth: "berth-secret" };
  const service = options.service ?? "berth-test-registry";
  const issuer = options.issuer ?? "berth-test-issuer";
  const lifetime = options.expiresInSec ?? 300;
  const anonymousPull = options.anonymousPull ?? true;
  const refreshTokens = new Map<string, string>();
  const requests: TokenRequestRecord[] = [];

  function jwt(account: string | undefined, access: Access[]): string {
    const now = Math.floor(Date.now() / 1000);
    const head = { typ: "JWT", alg: "ES256", x5c: [certDer.toString("base64")] };
    const claims = { iss: issuer, sub: account ?? "", aud: service, exp: now + lifetime, nbf: now - 5, iat: now, jti: randomBytes(12).toString("hex"), access };
    const input = `${b64url(JSON.stringify(head))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
    return `${input}.${b64url(sig)}`;
  }

  function grant(account: string | undefined, scopes: string[]): Access[] {
    const out: Access[] = [];
    for (const s of scopes) {
      const a = parseScope(s);
      if (!a) continue;
      const actions = account !== undefined ? a.actions : anonymousPull ? a.actions.filter((x) => x === "pull") : [];
      out.push({ ...a, actions });
    }
    return out;
  }

  function answer(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/token" || (req.method !== "GET" && req.method !== "POST")) return answer(res, 404, { details: "not found" });
    const record = (r: Omit<TokenRequestRecord, "status">, status: number) => requests.push({ ...r, status });
    if (req.method === "GET") {
      const scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean);
      const auth = req.headers.authorization;
      let account: string | undefined;
      if (auth?.startsWith("Basic ")) {
        const [user, ...rest] = Buffer.from(auth.slice(6), "base64").toString("utf8").split(":");
        if (user === undefined || users[user] === undefined || users[user] !== rest.join(":")) {
          record({ method: "GET", grant: "basic", account: user, scopes }, 401);
          return answer(res, 401, { details: "invalid username or password" });
        }
        account = user;
      }
      const body: Record<string, unknown> = { expires_in: lifetime, issued_at: new Date().toISOString() };
      body.token = body.access_token = jwt(account, grant(account, scopes));
      if (account !== undefined && url.searchParams.get("offline_token") === "true") {
        const rt = randomBytes(24).toString("hex");
        refreshTokens.set(rt, account);
        body.refresh_token = rt;
      }
      record({ method: "GET", grant: account !== undefined ? "basic" : "anonymous", account, scopes }, 200);
      return answer(res, 200, body);
    }
    const form = new URLSearchParams(await readBody(req));
    const scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
    const grantType = form.get("grant_type");
    let account: string | undefined;
    if (grantType === "password") {
      const user = form.get("username") ?? "";
      if (users[user] === undefined || users[user] !== form.get("password")) {
        record({ method: "POST", grant: "password", account: user, scopes }, 401);
        return answer(res, 401, { error: "invalid_grant" });
      }
      account = user;
    } else if (grantType === "refresh_token") {
      account = refreshTokens.get(form.get("refresh_token") ?? "");
      if (account === undefined) {
        record({ method: "POST", grant: "refresh_token", account: undefined, scopes }, 401);
        return answer(res, 401, { error: "invalid_grant" });
      }
    } else {
      return answer(res, 400, { error: "unsupported_grant_type" });
    }
    const body: Record<string, unknown> = { access_token: jwt(account, grant(account, scopes)), expires_in: lifetime, issued_at: new Date().toISOString(), scope: scopes.join(" ") };
    if (grantType === "refresh_token") body.refresh_token = form.get("refresh_token");
    else if (form.get("access_type") === "offline") {
      const rt = randomBytes(24).toString("hex");
      refreshTokens.set(rt, account);
      body.refresh_token = rt;
    }
    record({ method: "POST", grant: grantType as "password" | "refresh_token", account, scopes }, 200);
    return answer(res, 200, body);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) answer(res, 500, { details: String(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  server.unref();
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  const url = `http://127.0.0.1:${port}`;
  let stopped = false;
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certFile,
    users,
    requests,
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
