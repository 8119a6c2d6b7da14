/**
 * Auth: htpasswd parsing and checks, scopes and access rules, Basic mode,
 * and Docker token auth (challenges, the token endpoint, what a token lets
 * through, and hostile tokens: forged, expired, for another service, alg none).
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasCode } from "@berth/digest";
import bcrypt from "bcryptjs";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allowedActions, parseScopes } from "../src/auth/options.js";
import { parseHtpasswd } from "../src/auth/htpasswd.js";
import { type AccessRule, SERVER_ERROR_CODES } from "../src/index.js";
import { RegistryError } from "../src/registry/errors.js";
import { RegistryClient, startBerth, tempDir } from "./helpers.js";

const sha = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const KEY = "0123456789abcdef0123456789abcdef-test-key";

const tmp = tempDir();
const htpasswd = join(tmp.dir, "htpasswd");
writeFileSync(
  htpasswd,
  [
    "# berth test accounts",
    `alice:${bcrypt.hashSync("wonderland", 4)}`,
    `reader:${bcrypt.hashSync("books", 4).replace("$2b$", "$2y$")}`,
    `bob:${bcrypt.hashSync("builder", 4)}`,
    "",
  ].join("\n"),
);
afterAll(() => tmp.cleanup());

const RULES: AccessRule[] = [
  { account: "alice", repository: "**", actions: ["pull", "push", "delete"] },
  { account: "reader", repository: "**", actions: ["pull"] },
  { account: "bob", repository: "bob/*", actions: ["pull", "push"] },
  { account: "anonymous", repository: "public/**", actions: ["pull"] },
];

describe("htpasswd, scopes, rules", () => {
  it("parses bcrypt lines and refuses anything else, naming the line", () => {
    const users = parseHtpasswd(`# c\n\nu1:${bcrypt.hashSync("x", 4)}\n`);
    expect([...users.keys()]).toEqual(["u1"]);
    for (const bad of ["u2:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "u3:$apr1$abc$def", "nocolon"]) {
      let err: unknown;
      try {
        parseHtpasswd(`u1:${bcrypt.hashSync("x", 4)}\n${bad}\n`, "/etc/h");
      } catch (e) {
        err = e;
      }
      expect(hasCode(err, SERVER_ERROR_CODES.htpasswd)).toBe(true);
      expect((err as Error).message).toContain("line 2");
    }
  });

  it("parses scopes, and refuses malformed ones with 400", () => {
    expect(parseScopes("repository:team/app:pull,push registry:catalog:*")).toEqual([
      { type: "repository", name: "team/app", actions: ["pull", "push"] },
      { type: "registry", name: "catalog", actions: ["*"] },
    ]);
    expect(parseScopes("repository(plugin):a:pull")).toEqual([{ type: "repository", name: "a", actions: ["pull"] }]);
    for (const bad of ["repository:UPPER:pull", "nocolons", "registry:other:*", "thing:a:pull"]) {
      expect(() => parseScopes(bad)).toThrow(RegistryError);
    }
  });

  it("matches rules by account and pattern", () => {
    expect([...allowedActions(RULES, "bob", "bob/x")]).toEqual(["pull", "push"]);
    expect([...allowedActions(RULES, "bob", "bob/x/y")]).toEqual([]);
    expect([...allowedActions(RULES, undefined, "public/a/b")]).toEqual(["pull"]);
    expect([...allowedActions(RULES, undefined, "private")]).toEqual([]);
    expect([...allowedActions(RULES, "reader", "any/thing")]).toEqual(["pull"]);
  });
});

describe("basic mode", () => {
  let berth: Awaited<ReturnType<typeof startBerth>>;
  beforeAll(async () => {
    berth = await startBerth({ auth: { mode: "basic", htpasswd, access: RULES } });
  });
  afterAll(() => berth.server.close());
  const client = (auth?: string) => new RegistryClient(berth.server.url, "team/app", auth ? { Authorization: auth } : {});

  it("GET /v2/ needs valid credentials: 401 with a Basic challenge, then 200", async () => {
    const none = await client().request("GET", "/v2/");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Basic realm="berth"');
    expect(none.errorCode()).toBe("UNAUTHORIZED");
    expect((await client(basic("alice", "wrong")).request("GET", "/v2/")).status).toBe(401);
    expect((await client(basic("nobody", "wonderland")).request("GET", "/v2/")).status).toBe(401);
    expect((await client("Basic !!!").request("GET", "/v2/")).status).toBe(401);
    expect((await client(basic("alice", "wonderland")).request("GET", "/v2/")).status).toBe(200);
    expect((await client(basic("reader", "books")).request("GET", "/v2/")).status).toBe(200);
  });

  it("an account may do what its rules give it: 403 DENIED otherwise; anonymous gets 401", async () => {
    const alice = client(basic("alice", "wonderland"));
    expect((await alice.pushBlob(Buffer.from("hello"), sha("hello"))).status).toBe(201);
    expect((await client(basic("reader", "books")).request("GET", `/v2/<name>/blobs/${sha("hello")}`)).status).toBe(200);
    const denied = await client(basic("reader", "books")).request("POST", "/v2/<name>/blobs/uploads/");
    expect([denied.status, denied.errorCode()]).toEqual([403, "DENIED"]);
    expect((await client(basic("bob", "builder")).request("POST", "/v2/bob/x/blobs/uploads/")).status).toBe(202);
    expect((await client(basic("bob", "builder")).request("GET", "/v2/<name>/tags/list")).status).toBe(403);
    expect((await client().request("GET", "/v2/<name>/tags/list")).status).toBe(401);
  });

  it("with auth on, a blob is readable only through a repository it belongs to", async () => {
    const alice = client(basic("alice", "wonderland"));
    expect((await alice.pushBlob(Buffer.from("secret"), sha("secret"), "vault/a")).status).toBe(201);
    const viaOther = await alice.request("GET", `/v2/team/app/blobs/${sha("secret")}`);
    expect([viaOther.status, viaOther.errorCode()]).toEqual([404, "BLOB_UNKNOWN"]);
    expect((await alice.request("GET", `/v2/vault/a/blobs/${sha("secret")}`)).status).toBe(200);
  });

  it("anonymous pull where a rule allows it", async () => {
    const alice = client(basic("alice", "wonderland"));
    expect((await alice.pushBlob(Buffer.from("pub"), sha("pub"), "public/x")).status).toBe(201);
    expect((await client().request("GET", `/v2/public/x/blobs/${sha("pub")}`)).status).toBe(200);
    expect((await client().request("POST", "/v2/public/x/blobs/uploads/")).status).toBe(401);
  });
});

describe("token mode", () => {
  let berth: Awaited<ReturnType<typeof startBerth>>;
  let realm: string;
  beforeAll(async () => {
    berth = await startBerth({ auth: { mode: "token", htpasswd, access: RULES, tokenKey: KEY, service: "berth-test" } });
    realm = `${berth.server.url}/token`;
  });
  afterAll(() => berth.server.close());

  async function token(auth: string | undefined, ...scopes: string[]): Promise<{ status: number; token?: string; body: Record<string, unknown> }> {
    const url = new URL(realm);
    url.searchParams.set("service", "berth-test");
    for (const s of scopes) url.searchParams.append("scope", s);
    const res = await fetch(url, { headers: auth ? { Authorization: auth } : {} });
    const body = (await res.json()) as Record<string, unknown>;
    return { status: res.status, body, ...(typeof body.token === "string" ? { token: body.token } : {}) };
  }
  const bearer = (t: string) => new RegistryClient(berth.server.url, "team/app", { Authorization: `Bearer ${t}` });
  const claims = (t: string) => JSON.parse(Buffer.from(t.split(".")[1]!, "base64url").toString()) as { access: unknown; sub: string; aud: string };

  it("challenges with realm, service and the scope the request needs", async () => {
    const base = await fetch(`${berth.server.url}/v2/`);
    expect(base.status).toBe(401);
    expect(base.headers.get("www-authenticate")).toBe(`Bearer realm="${realm}",service="berth-test"`);
    const hostile = await fetch(`${berth.server.url}/v2/team/app/blobs/uploads/?mount=${sha("x")}&from=a%22%0d%0aX:%20y`, { method: "POST" });
    expect(hostile.status).toBe(400);
    expect(hostile.headers.get("www-authenticate")).toBeNull();
    const push = await fetch(`${berth.server.url}/v2/team/app/blobs/uploads/?mount=${sha("x")}&from=other/repo`, { method: "POST" });
    expect(push.headers.get("www-authenticate")).toBe(
      `Bearer realm="${realm}",service="berth-test",scope="repository:team/app:pull,push repository:other/repo:pull"`,
    );
  });

  it("the token endpoint: 401 without or with wrong credentials; grants only what the rules allow", async () => {
    // Anonymous may pull public/** here, so it gets a token, but one that grants nothing else.
    const anonymous = await token(undefined, "repository:team/app:pull");
    expect([anonymous.status, claims(anonymous.token!).access]).toEqual([200, []]);
    expect((await token(basic("alice", "nope"), "repository:team/app:pull")).status).toBe(401);
    const login = await token(basic("alice", "wonderland"));
    expect(login.status).toBe(200);
    expect(login.body.expires_in).toBe(300);
    expect(login.body.access_token).toBe(login.token);
    const r = await token(basic("reader", "books"), "repository:team/app:pull,push,delete");
    expect(claims(r.token!)).toMatchObject({ sub: "reader", aud: "berth-test", access: [{ type: "repository", name: "team/app", actions: ["pull"] }] });
    const none = await token(basic("bob", "builder"), "repository:team/app:pull");
    expect(claims(none.token!).access).toEqual([]);
    const wrongService = await fetch(`${realm}?service=other`, { headers: { Authorization: basic("alice", "wonderland") } });
    expect(wrongService.status).toBe(400);
  });

  it("a pull token cannot push or delete; a push token can", async () => {
    const pull = (await token(basic("alice", "wonderland"), "repository:team/app:pull")).token!;
    const post = await bearer(pull).request("POST", "/v2/<name>/blobs/uploads/");
    expect(post.status).toBe(401);
    expect(post.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect((await bearer(pull).request("DELETE", `/v2/<name>/manifests/${sha("m")}`)).status).toBe(401);
    const push = (await token(basic("alice", "wonderland"), "repository:team/app:pull,push")).token!;
    expect((await bearer(push).pushBlob(Buffer.from("tok"), sha("tok"))).status).toBe(201);
    expect((await bearer(pull).request("GET", `/v2/<name>/blobs/${sha("tok")}`)).status).toBe(200);
  });

  it("a token for repository A cannot read repository B, nor B's blobs through A", async () => {
    const b = (await token(basic("alice", "wonderland"), "repository:repo/b:pull,push")).token!;
    expect((await bearer(b).pushBlob(Buffer.from("b-only"), sha("b-only"), "repo/b")).status).toBe(201);
    const a = (await token(basic("alice", "wonderland"), "repository:repo/a:pull,push")).token!;
    expect((await bearer(a).request("GET", `/v2/repo/b/blobs/${sha("b-only")}`)).status).toBe(401);
    const through = await bearer(a).request("GET", `/v2/repo/a/blobs/${sha("b-only")}`);
    expect([through.status, through.errorCode()]).toEqual([404, "BLOB_UNKNOWN"]);
    // Mounting B's blob into A needs pull on B in the token; without it, 401 asking for it.
    const mount = await bearer(a).request("POST", "/v2/repo/a/blobs/uploads/", { query: { mount: sha("b-only"), from: "repo/b" } });
    expect(mount.status).toBe(401);
    // An automatic mount (no from) cannot take it from B either: a new session instead.
    const auto = await bearer(a).request("POST", "/v2/repo/a/blobs/uploads/", { query: { mount: sha("b-only") } });
    expect(auto.status).toBe(202);
    const both = (await token(basic("alice", "wonderland"), "repository:repo/a:pull,push", "repository:repo/b:pull")).token!;
    expect((await bearer(both).request("POST", "/v2/repo/a/blobs/uploads/", { query: { mount: sha("b-only"), from: "repo/b" } })).status).toBe(201);
  });

  it("refuses forged, expired, foreign and unsigned tokens", async () => {
    const key = new TextEncoder().encode(KEY);
    const access = [{ type: "repository", name: "team/app", actions: ["pull"] }];
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: Record<string, unknown>, k = key) =>
      new SignJWT({ access, ...claims }).setProtectedHeader({ alg: "HS256" }).sign(k);
    const good = await sign({ iss: "berth", aud: "berth-test", sub: "alice", iat: now, nbf: now, exp: now + 60 });
    expect((await bearer(good).request("GET", "/v2/<name>/tags/list")).status).not.toBe(401);
    const bad = [
      await sign({ iss: "berth", aud: "berth-test", sub: "alice", iat: now - 7200, exp: now - 3600 }),
      await sign({ iss: "berth", aud: "other-service", sub: "alice", iat: now, exp: now + 60 }),
      await sign({ iss: "someone", aud: "berth-test", sub: "alice", iat: now, exp: now + 60 }),
      await sign({ iss: "berth", aud: "berth-test", sub: "alice", iat: now, exp: now + 60 }, new TextEncoder().encode("x".repeat(40))),
      await sign({ iss: "berth", aud: "berth-test", sub: "alice", iat: now, exp: now + 60 * 60 * 24 * 365 }),
      `${Buffer.from('{"alg":"none"}').toString("base64url")}.${good.split(".")[1]}.`,
      `${good.slice(0, -4)}AAAA`,
      "x".repeat(10_000),
      "not-a-jwt",
    ];
    for (const t of bad) {
      const r = await bearer(t).request("GET", "/v2/<name>/tags/list");
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate")).toContain('error="invalid_token"');
    }
  });

  it("catalog: a catalog token lists only repositories the account may pull", async () => {
    const t = (await token(basic("bob", "builder"), "registry:catalog:*", "repository:bob/x:push,pull")).token!;
    expect((await bearer(t).pushBlob(Buffer.from("bob's"), sha("bob's"), "bob/x")).status).toBe(201);
    const r = await bearer(t).request("GET", "/v2/_catalog");
    expect(r.status).toBe(200);
    expect(r.json<{ repositories: string[] }>().repositories).toEqual(["bob/x"]);
  });

  it("anonymous tokens carry only anonymous rights", async () => {
    const anon = await token(undefined, "repository:public/p:pull,push");
    expect(anon.status).toBe(200);
    expect(claims(anon.token!).access).toEqual([{ type: "repository", name: "public/p", actions: ["pull"] }]);
  });

  it("with the default rules, a token without credentials grants nothing, and every account may push", async () => {
    const plain = await startBerth({ auth: { mode: "token", htpasswd } });
    try {
      const url = `${plain.server.url}/token?service=berth&scope=repository:x:pull`;
      const anon = (await (await fetch(url)).json()) as { token: string };
      expect(claims(anon.token).access).toEqual([]);
      const bob = (await (await fetch(`${url},push`, { headers: { Authorization: basic("bob", "builder") } })).json()) as { token: string };
      expect(claims(bob.token).access).toEqual([{ type: "repository", name: "x", actions: ["pull", "push"] }]);
    } finally {
      await plain.server.close();
    }
  });

  it("POST with an OAuth2 password grant; other grants are refused", async () => {
    const form = (body: Record<string, string>) =>
      fetch(realm, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(body) });
    const ok = await form({ grant_type: "password", username: "alice", password: "wonderland", service: "berth-test", scope: "repository:team/app:pull", client_id: "x" });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { access_token: string; scope: string };
    expect(body.scope).toBe("repository:team/app:pull");
    expect((await bearer(body.access_token).request("GET", "/v2/<name>/tags/list")).status).not.toBe(401);
    expect((await form({ grant_type: "password", username: "alice", password: "x" })).status).toBe(401);
    const refresh = await form({ grant_type: "refresh_token", refresh_token: "r" });
    expect(refresh.status).toBe(400);
    expect(((await refresh.json()) as { error: string }).error).toBe("unsupported_grant_type");
  });
});
