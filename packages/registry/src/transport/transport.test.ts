import { randomBytes } from "node:crypto";
import { DigestMismatchError } from "@berth/digest";
import { afterEach, describe, expect, it } from "vitest";
import { fakeServer, type FakeServer, json } from "../../test/fake-server.js";
import { withBasic, withBearer, mergeScopes } from "./auth.js";
import { parseChallenges } from "./challenge.js";
import { connect } from "./connect.js";
import { HttpPool, isTransientNetworkError } from "./http.js";
import { isLoopbackHost, ping } from "./ping.js";
import { resumableBody } from "./resumable.js";
import { withRetry } from "./retry.js";
import { readBody, type Transport } from "./types.js";
import { withUserAgent } from "./useragent.js";

let servers: FakeServer[] = [];
const pool = new HttpPool();
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
async function serve(h: Parameters<typeof fakeServer>[0]): Promise<FakeServer> {
  const s = await fakeServer(h);
  servers.push(s);
  return s;
}
const http: Transport = pool.transport(true);
const text = async (t: Transport, url: string) => {
  const res = await t({ method: "GET", url: new URL(url) });
  return { status: res.status, body: new TextDecoder().decode(await readBody(res, 1 << 20)) };
};

describe("parseChallenges", () => {
  it("reads quoted parameters with commas and escapes, several challenges, any case", () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: "bearer", params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull,push" } },
    ]);
    expect(parseChallenges(['Basic realm="x \\"y\\""', "BEARER Realm=plain, error=insufficient_scope"])).toEqual([
      { scheme: "basic", params: { realm: 'x "y"' } },
      { scheme: "bearer", params: { realm: "plain", error: "insufficient_scope" } },
    ]);
    expect(parseChallenges('Basic realm="a", Bearer realm="b"').map((c) => c.scheme)).toEqual(["basic", "bearer"]);
  });
  it("refuses what is not a challenge with ERR_AUTH_CHALLENGE", () => {
    expect(() => parseChallenges('realm="x"')).toThrow(expect.objectContaining({ code: "ERR_AUTH_CHALLENGE" }));
    expect(() => parseChallenges('Bearer realm="unterminated')).toThrow(expect.objectContaining({ code: "ERR_AUTH_CHALLENGE" }));
  });
});

describe("mergeScopes", () => {
  it("merges actions per resource and sorts", () => {
    expect(mergeScopes(["repository:a:pull"], ["repository:a:push", "repository:b:pull"])).toEqual(["repository:a:pull,push", "repository:b:pull"]);
  });
});

describe("withUserAgent", () => {
  it("sets User-Agent unless the request has one", async () => {
    const s = await serve((_req, res) => res.end("ok"));
    await text(withUserAgent(http, "ua/1"), `${s.origin}/`);
    await withUserAgent(http, "ua/1")({ method: "GET", url: new URL(`${s.origin}/`), headers: { "user-agent": "mine" } }).then((r) => readBody(r, 100));
    expect(s.seen.map((r) => r.headers["user-agent"])).toEqual(["ua/1", "mine"]);
  });
});

describe("withRetry", () => {
  const fast = { baseDelayMs: 1, maxDelayMs: 5 };
  it("counts connection failures as transient, never berth's own errors", () => {
    expect(isTransientNetworkError(Object.assign(new Error("reset"), { code: "ECONNRESET" }))).toBe(true);
    expect(isTransientNetworkError(new Error("wrapped", { cause: Object.assign(new Error("aborted"), { code: "ECONNRESET" }) }))).toBe(true);
    expect(isTransientNetworkError(new DigestMismatchError("blob x: content hashes to y"))).toBe(false);
    expect(isTransientNetworkError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe(false);
  });
  it("retries 503, 429 and 408 for a GET, then returns the answer", async () => {
    const s = await serve((_req, res, _b, n) => (n === 1 ? res.writeHead(503).end() : n === 2 ? res.writeHead(429, { "retry-after": "0" }).end() : n === 3 ? res.writeHead(408).end() : res.end("fine")));
    expect(await text(withRetry(http, fast), `${s.origin}/x`)).toEqual({ status: 200, body: "fine" });
    expect(s.seen).toHaveLength(4);
  });
  it("gives up after the retries and returns the last response", async () => {
    const s = await serve((_req, res) => res.writeHead(502).end());
    expect((await text(withRetry(http, { ...fast, retries: 2 }), `${s.origin}/x`)).status).toBe(502);
    expect(s.seen).toHaveLength(3);
  });
  it("never retries a PATCH or a one-shot body, and not a 404", async () => {
    const s = await serve((req, res) => res.writeHead(req.url === "/nf" ? 404 : 503).end());
    const t = withRetry(http, fast);
    expect((await t({ method: "PATCH", url: new URL(`${s.origin}/p`), body: new Uint8Array(3) })).status).toBe(503);
    const once = { open: () => [new Uint8Array(2)] as unknown as AsyncIterable<Uint8Array>, replayable: false };
    expect((await t({ method: "PUT", url: new URL(`${s.origin}/q`), body: { ...once, open: async function* () { yield new Uint8Array(2); } } })).status).toBe(503);
    expect((await t({ method: "GET", url: new URL(`${s.origin}/nf`) })).status).toBe(404);
    expect(s.seen.map((r) => r.url)).toEqual(["/p", "/q", "/nf"]);
  });
  it("retries a connection reset, resending a replayable body", async () => {
    const s = await serve((req, res, _b, n) => {
      if (n === 1) return req.socket.destroy();
      res.end("after reset");
    });
    const body = { open: async function* () { yield new TextEncoder().encode("payload"); }, length: 7 };
    const res = await withRetry(http, fast)({ method: "PUT", url: new URL(`${s.origin}/r`), body });
    expect(new TextDecoder().decode(await readBody(res, 100))).toBe("after reset");
    expect(s.seen.map((r) => r.body.toString())).toEqual(["payload", "payload"]);
  });
});

describe("ping", () => {
  it("finds no auth (200), a Bearer challenge (401), and falls back from https to http for a loopback host", async () => {
    const open = await serve((_req, res) => res.end("{}"));
    const retry = withRetry(http, { retries: 0 });
    const p1 = await ping({ host: open.host, insecure: true, secure: retry, unverified: withRetry(pool.transport(false), { retries: 0 }) });
    expect(p1).toEqual({ protocol: "http:", tlsVerify: false, challenge: undefined });
    const authed = await serve((_req, res) => json(res, 401, {}, { "www-authenticate": 'Bearer realm="http://x/token",service="svc"' }));
    const p2 = await ping({ host: authed.host, insecure: true, secure: retry, unverified: pool.transport(false) });
    expect(p2.challenge).toEqual({ scheme: "bearer", params: { realm: "http://x/token", service: "svc" } });
  });
  it("says unavailable when nothing listens, protocol error for other statuses", async () => {
    const s = await serve((_req, res) => res.writeHead(404).end());
    await expect(ping({ host: s.host, insecure: true, secure: http, unverified: pool.transport(false) })).rejects.toMatchObject({ code: "ERR_REGISTRY_PROTOCOL" });
    const host = s.host;
    await s.close();
    servers = [];
    await expect(ping({ host, insecure: true, secure: http, unverified: pool.transport(false) })).rejects.toMatchObject({ code: "ERR_REGISTRY_UNAVAILABLE" });
  });
  it("treats loopback names and addresses as insecure", () => {
    expect(["localhost:5000", "127.0.0.1", "127.1.2.3:80", "[::1]:5000", "x.localhost"].every(isLoopbackHost)).toBe(true);
    expect(["registry.example", "10.0.0.1:5000", "localhostx"].some(isLoopbackHost)).toBe(false);
  });
});

describe("withBasic", () => {
  it("adds Basic credentials", async () => {
    const s = await serve((_req, res) => res.end());
    await text(withBasic(http, { username: "u", password: "p:w" }), `${s.origin}/v2/`);
    expect(s.seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from("u:p:w").toString("base64")}`);
  });
});

describe("withBearer", () => {
  async function tokenServer(opts: { expires?: number } = {}) {
    let issued = 0;
    const tokens = await serve((req, res, body) => {
      issued++;
      const url = new URL(req.url!, "http://x");
      const scopes = req.method === "POST" ? (new URLSearchParams(body.toString()).get("scope") ?? "") : url.searchParams.getAll("scope").join(" ");
      json(res, 200, { token: `t${issued}:${scopes}`, expires_in: opts.expires ?? 300 });
    });
    return tokens;
  }
  function registry() {
    return serve((req, res) => {
      const auth = req.headers.authorization ?? "";
      const need = req.url === "/v2/b/push" ? "repository:b:pull,push" : "repository:a:pull";
      if (!auth.startsWith("Bearer ") || !auth.includes(need) || auth.includes("stale")) {
        return json(res, 401, { errors: [{ code: "UNAUTHORIZED" }] }, { "www-authenticate": `Bearer realm="x",service="svc",scope="${need}",error="insufficient_scope"` });
      }
      res.end(auth);
    });
  }
  it("reuses a token per scope set, fetches another for other scopes, and sends service, scope and account", async () => {
    const tokens = await tokenServer();
    const reg = await registry();
    const t = withBearer(http, { challenge: { scheme: "bearer", params: { realm: `${tokens.origin}/token`, service: "svc" } }, credential: { username: "me", password: "pw" }, tokenTransport: http });
    const get = (path: string, scopes: string[]) => t({ method: "GET", url: new URL(`${reg.origin}${path}`), scopes }).then((r) => readBody(r, 1000));
    await get("/v2/a", ["repository:a:pull"]);
    await get("/v2/a", ["repository:a:pull"]);
    await Promise.all([get("/v2/b/push", ["repository:b:pull,push"]), get("/v2/b/push", ["repository:b:push", "repository:b:pull"])]);
    expect(tokens.seen).toHaveLength(2);
    const first = new URL(tokens.seen[0]!.url, "http://x");
    expect(first.searchParams.get("service")).toBe("svc");
    expect(first.searchParams.getAll("scope")).toEqual(["repository:a:pull"]);
    expect(first.searchParams.get("account")).toBe("me");
    expect(tokens.seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from("me:pw").toString("base64")}`);
    expect(reg.seen.every((r) => r.headers.authorization?.startsWith("Bearer "))).toBe(true);
  });
  it("on 401 fetches a token for the challenged scope and resends once", async () => {
    const tokens = await tokenServer();
    const reg = await registry();
    const t = withBearer(http, { challenge: { scheme: "bearer", params: { realm: `${tokens.origin}/token` } }, tokenTransport: http });
    const res = await t({ method: "GET", url: new URL(`${reg.origin}/v2/b/push`), scopes: ["repository:b:pull"] });
    expect(res.status).toBe(200);
    expect(new TextDecoder().decode(await readBody(res, 1000))).toContain("repository:b:pull,push");
    expect(tokens.seen).toHaveLength(2);
  });
  it("refreshes an expired token; uses an identity token with the OAuth2 refresh grant", async () => {
    const tokens = await tokenServer({ expires: 60 });
    const reg = await registry();
    let now = 0;
    const t = withBearer(http, {
      challenge: { scheme: "bearer", params: { realm: `${tokens.origin}/token`, service: "svc" } },
      credential: { identityToken: "refresh-me" },
      tokenTransport: http,
      now: () => now,
    });
    const get = () => t({ method: "GET", url: new URL(`${reg.origin}/v2/a`), scopes: ["repository:a:pull"] }).then((r) => readBody(r, 1000));
    await get();
    now = 30_000;
    await get();
    now = 55_000; // within 10 s of expiry
    await get();
    expect(tokens.seen).toHaveLength(2);
    expect(tokens.seen[0]!.method).toBe("POST");
    const form = new URLSearchParams(tokens.seen[0]!.body.toString());
    expect(Object.fromEntries(form)).toMatchObject({ grant_type: "refresh_token", refresh_token: "refresh-me", service: "svc", scope: "repository:a:pull" });
  });
  it("reports refused credentials as ERR_REGISTRY_UNAUTHORIZED", async () => {
    const tokens = await serve((_req, res) => json(res, 401, { details: "no" }));
    const t = withBearer(http, { challenge: { scheme: "bearer", params: { realm: `${tokens.origin}/token` } }, credential: { username: "u", password: "bad" }, tokenTransport: http });
    await expect(t({ method: "GET", url: new URL(`${tokens.origin}/v2/`) })).rejects.toMatchObject({ code: "ERR_REGISTRY_UNAUTHORIZED" });
  });
});

describe("resumableBody", () => {
  const blob = randomBytes(300_000);
  function blobServer(opts: { cutOnce?: boolean; ignoreRange?: boolean }) {
    let cut = opts.cutOnce ?? false;
    return serve((req, res) => {
      const m = /bytes=(\d+)-/.exec(req.headers.range ?? "");
      const start = m && !opts.ignoreRange ? Number(m[1]) : 0;
      const part = blob.subarray(start);
      res.writeHead(start > 0 ? 206 : 200, { "content-length": part.length, ...(start > 0 ? { "content-range": `bytes ${start}-${blob.length - 1}/${blob.length}` } : {}) });
      if (cut) {
        cut = false;
        res.write(part.subarray(0, 100_000), () => setTimeout(() => req.socket.destroy(), 20));
        return;
      }
      res.end(part);
    });
  }
  async function collect(s: FakeServer, offset = 0, onConnect?: (n: number) => void) {
    const chunks: Uint8Array[] = [];
    const onError = async () => new Error("status");
    for await (const c of resumableBody(http, { method: "GET", url: new URL(`${s.origin}/blob`) }, { offset, size: blob.length, onError, ...(onConnect ? { onConnect } : {}) })) chunks.push(c);
    return Buffer.concat(chunks);
  }
  it("reconnects after a cut with Range from where it was", async () => {
    const s = await blobServer({ cutOnce: true });
    const starts: number[] = [];
    const got = await collect(s, 0, (n) => starts.push(n));
    expect(got.equals(blob)).toBe(true);
    expect(starts).toHaveLength(2);
    expect(starts[1]).toBeGreaterThanOrEqual(100_000);
    expect(s.seen[1]!.headers.range).toBe(`bytes=${starts[1]}-`);
  });
  it("starts at an offset, and drops the head of a 200 from a server that ignores Range", async () => {
    const s = await blobServer({});
    expect((await collect(s, 123_456)).equals(blob.subarray(123_456))).toBe(true);
    const t = await blobServer({ ignoreRange: true });
    expect((await collect(t, 200_000)).equals(blob.subarray(200_000))).toBe(true);
  });
});

describe("connect", () => {
  it("pings, then adds Basic auth for a Basic challenge and the user agent", async () => {
    const s = await serve((req, res) => (req.headers.authorization ? res.end("{}") : json(res, 401, {}, { "www-authenticate": 'Basic realm="r"' })));
    const c = await connect({ pool, host: s.host, insecure: true, credential: async () => ({ username: "a", password: "b" }), userAgent: "test-ua" });
    expect(c.origin).toBe(s.origin);
    const res = await c.transport({ method: "GET", url: new URL(`${c.origin}/v2/x`) });
    await readBody(res, 100);
    expect(res.status).toBe(200);
    expect(s.seen.at(-1)!.headers["user-agent"]).toBe("test-ua");
  });
});
