import { afterAll, describe, expect, it } from "vitest";
import { peersRequired } from "./commands.js";
import { registry, type RegistryPeer } from "./registry.js";
import { parseAccessLog, TEST_USER } from "./registry-auth.js";
import { tokenIssuer, type TokenIssuer } from "./token-issuer.js";

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

describe("parseAccessLog", () => {
  it("reads combined-log lines and skips the others", () => {
    const text = [
      'time="2026-12-04T18:13:04Z" level=info msg="listening on 127.0.0.1:45999"',
      '127.0.0.1 - - [04/Dec/2026:18:13:05 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"',
      '127.0.0.1 - - [04/Dec/2026:18:13:05 +0000] "HEAD /v2/x/manifests/latest HTTP/1.1" 404 96 "" "berth/0.1"',
    ].join("\n");
    expect(parseAccessLog(text)).toEqual([
      { method: "GET", path: "/v2/", status: 200, bytes: 2, userAgent: "curl/7.88.1" },
      { method: "HEAD", path: "/v2/x/manifests/latest", status: 404, bytes: 96, userAgent: "berth/0.1" },
    ]);
  });
});

describe("docker-registry with htpasswd basic auth", () => {
  let reg: RegistryPeer | undefined;
  afterAll(async () => reg?.stop());

  it("challenges, accepts the test user, refuses a wrong password, logs every request", async () => {
    reg = await registry({ auth: { kind: "htpasswd" } });
    if (!reg) return expect(peersRequired()).toBe(false);
    expect(reg.user).toEqual(TEST_USER);
    const anon = await fetch(`${reg.url}/v2/`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get("www-authenticate")).toMatch(/^Basic realm="berth-test"/);
    const ok = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic(TEST_USER.username, TEST_USER.password) } });
    expect(ok.status).toBe(200);
    const wrong = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic(TEST_USER.username, "nope") } });
    expect(wrong.status).toBe(401);
    const log = await reg.accessLog();
    expect(log.slice(-3).map((e) => [e.method, e.path, e.status])).toEqual([
      ["GET", "/v2/", 401],
      ["GET", "/v2/", 200],
      ["GET", "/v2/", 401],
    ]);
  });
});

describe("docker-registry with token auth", () => {
  let reg: RegistryPeer | undefined;
  let issuer: TokenIssuer | undefined;
  afterAll(async () => {
    await reg?.stop();
    await issuer?.stop();
  });

  it("trusts the issuer's tokens: push scope for the user, pull only for anonymous callers", async () => {
    issuer = await tokenIssuer();
    if (!issuer) return expect(peersRequired()).toBe(false);
    reg = await registry({ auth: { kind: "token", issuer } });
    if (!reg) return expect(peersRequired()).toBe(false);
    const ping = await fetch(`${reg.url}/v2/`);
    expect(ping.status).toBe(401);
    const challenge = ping.headers.get("www-authenticate") ?? "";
    expect(challenge).toContain(`realm="${issuer.realm}"`);
    expect(challenge).toContain(`service="${issuer.service}"`);

    const scope = "repository:peers-test/app:pull,push";
    const tokenUrl = `${issuer.realm}?service=${issuer.service}&scope=${encodeURIComponent(scope)}`;
    const userToken = ((await (await fetch(tokenUrl, { headers: { authorization: basic(TEST_USER.username, TEST_USER.password) } })).json()) as { token: string }).token;
    const started = await fetch(`${reg.url}/v2/peers-test/app/blobs/uploads/`, { method: "POST", headers: { authorization: `Bearer ${userToken}` } });
    expect(started.status).toBe(202);

    const anonToken = ((await (await fetch(tokenUrl)).json()) as { token: string }).token;
    const refused = await fetch(`${reg.url}/v2/peers-test/app/blobs/uploads/`, { method: "POST", headers: { authorization: `Bearer ${anonToken}` } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    const pulled = await fetch(`${reg.url}/v2/peers-test/app/tags/list`, { headers: { authorization: `Bearer ${anonToken}` } });
    expect(pulled.status).toBe(404); // authorized; the repository is empty

    const bad = await fetch(tokenUrl, { headers: { authorization: basic(TEST_USER.username, "wrong") } });
    expect(bad.status).toBe(401);

    // docker login's OAuth2 form: a password grant with offline access gives a refresh token that works later
    const form = new URLSearchParams({ grant_type: "password", username: TEST_USER.username, password: TEST_USER.password, service: issuer.service, client_id: "docker", access_type: "offline" });
    const oauth = (await (await fetch(issuer.realm, { method: "POST", body: form })).json()) as { access_token: string; refresh_token: string };
    expect(oauth.refresh_token).toMatch(/^[0-9a-f]{48}$/);
    const again = new URLSearchParams({ grant_type: "refresh_token", refresh_token: oauth.refresh_token, service: issuer.service, scope });
    const refreshed = (await (await fetch(issuer.realm, { method: "POST", body: again })).json()) as { access_token: string };
    const started2 = await fetch(`${reg.url}/v2/peers-test/app/blobs/uploads/`, { method: "POST", headers: { authorization: `Bearer ${refreshed.access_token}` } });
    expect(started2.status).toBe(202);
    expect(issuer.requests.map((r) => [r.method, r.grant, r.status])).toEqual([
      ["GET", "basic", 200],
      ["GET", "anonymous", 200],
      ["GET", "basic", 401],
      ["POST", "password", 200],
      ["POST", "refresh_token", 200],
    ]);
  });
});
