/**
 * The protocol layer against dockerd's recorded answers: version prefixes
 * and out-of-range texts, ping headers, unknown paths and methods, the
 * images-only refusal, bad filters — on the unix socket and on TCP. None of
 * these reach the image service.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_VERSION, MIN_API_VERSION } from "../../src/engine/index.js";
import { raw, rawRecording, type Served, serve, serviceNotExpected } from "./helpers.js";

let served: Served;
beforeAll(async () => {
  served = await serve({ service: serviceNotExpected(), identity: { version: "9.9.9-test" } });
});
afterAll(() => served.close());

const unix = () => ({ socketPath: served.socketPath });

/** The response headers of a recorded exchange that every answer of dockerd carries. */
const EVERY_RESPONSE = ["api-version", "ostype", "server"];

describe("ping", () => {
  it.each(["GET", "HEAD"])("%s /_ping: OK and every header dockerd sends (plus Builder-Version, Swarm)", async (method) => {
    const rec = (await rawRecording(method === "GET" ? "ping-get" : "ping-head")).exchanges[0]!;
    for (const target of [unix(), { port: served.port }]) {
      const r = await raw(target, method, "/_ping");
      expect(r.status).toBe(rec.status);
      expect(r.body).toBe(method === "GET" ? "OK" : "");
      for (const h of Object.keys(rec.responseHeaders)) {
        if (h === "date") continue; // node adds its own
        expect(r.headers, `header ${h}`).toHaveProperty(h);
      }
      expect(r.headers["api-version"]).toBe(API_VERSION);
      expect(r.headers["cache-control"]).toBe(rec.responseHeaders["cache-control"]);
      expect(r.headers.pragma).toBe(rec.responseHeaders.pragma);
      expect(r.headers["content-type"]).toBe(rec.responseHeaders["content-type"]);
      expect(r.headers["content-length"]).toBe(rec.responseHeaders["content-length"]);
      expect(r.headers["docker-experimental"]).toBe("false");
      expect(r.headers.ostype).toBe("linux");
      expect(r.headers["builder-version"]).toBe("1");
      expect(r.headers.swarm).toBe("inactive");
    }
  });

  it("is served under a version prefix too", async () => {
    const rec = (await rawRecording("ping-versioned")).exchanges[0]!;
    const r = await raw(unix(), "GET", "/v1.41/_ping");
    expect([r.status, r.body]).toEqual([rec.status, "OK"]);
  });
});

describe("versions", () => {
  it("a version above the maximum: 400 with dockerd's text", async () => {
    const rec = (await rawRecording("version-too-new")).exchanges[0]!;
    const r = await raw(unix(), "GET", "/v1.99/version");
    expect(r.status).toBe(rec.status);
    expect(r.headers["content-type"]).toBe(rec.responseHeaders["content-type"]);
    const want = (rec.responseBody as { value: { message: string } }).value.message.replace("1.41", API_VERSION);
    expect(JSON.parse(r.body)).toEqual({ message: want });
  });

  it("a version below the minimum: 400 with dockerd's text, plain text below 1.24 as dockerd writes it", async () => {
    const rec = (await rawRecording("version-too-old")).exchanges[0]!;
    const r = await raw(unix(), "GET", "/v1.11/version");
    expect(r.status).toBe(rec.status);
    expect(r.headers["content-type"]).toBe(rec.responseHeaders["content-type"]);
    expect(rec.responseBody.kind).toBe("text");
    const want = (rec.responseBody as { text: string }).text.replace("1.12", MIN_API_VERSION);
    expect(r.body).toBe(want);
    const r23 = await raw(unix(), "GET", "/v1.23/version");
    expect([r23.status, r23.body]).toEqual([400, want.replace("1.11", "1.23")]);
  });

  it("the minimum and maximum themselves are served, and the unversioned path", async () => {
    for (const p of [`/v${MIN_API_VERSION}/version`, `/v${API_VERSION}/version`, "/version"]) {
      const r = await raw(unix(), "GET", p);
      expect(r.status, p).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Version: "9.9.9-test" });
    }
  });

  it("/version has every field dockerd's has, with berth as the Engine component", async () => {
    const rec = (await rawRecording("version-unversioned")).exchanges[0]!;
    const want = (rec.responseBody as { value: Record<string, unknown> }).value;
    const got = JSON.parse((await raw(unix(), "GET", "/version")).body) as Record<string, unknown>;
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    const engine = (got.Components as Array<{ Name: string; Details: Record<string, string> }>)[0]!;
    const recEngine = (want.Components as Array<{ Name: string; Details: Record<string, string> }>)[0]!;
    expect(engine.Name).toBe("Engine");
    expect(Object.keys(engine.Details).sort()).toEqual(Object.keys(recEngine.Details).sort());
    expect(got.Platform).toEqual({ Name: "berth" });
    expect(got.Os).toBe("linux");
  });
});

describe("unknown paths and other objects", () => {
  it.each([
    ["unknown-path", "GET", "/v1.41/nope"],
    ["unknown-unversioned", "GET", "/nope"],
    ["wrong-method", "PUT", "/v1.41/images/json"],
  ])("%s: dockerd's 404 page not found", async (name, method, path) => {
    const rec = (await rawRecording(name)).exchanges[0]!;
    const r = await raw(unix(), method, path);
    expect(r.status).toBe(rec.status);
    expect(JSON.parse(r.body)).toEqual((rec.responseBody as { value: unknown }).value);
    for (const h of EVERY_RESPONSE) expect(r.headers).toHaveProperty(h);
  });

  it.each([
    ["/v1.41/containers/json", "containers"],
    ["/containers/create", "containers"],
    ["/v1.44/networks", "networks"],
    ["/volumes", "volumes"],
    ["/v1.41/build", "builds"],
    ["/exec/abc/start", "exec sessions"],
    ["/swarm", "swarm"],
  ])("%s: 501 and one JSON message saying berth serves images only", async (path, what) => {
    const r = await raw(unix(), path.includes("create") || path.includes("build") || path.includes("start") ? "POST" : "GET", path);
    expect(r.status).toBe(501);
    expect(r.headers["content-type"]).toBe("application/json");
    const { message } = JSON.parse(r.body) as { message: string };
    expect(message).toMatch(new RegExp(`^berth serves images only: ${what} are not supported`));
    expect(message).not.toContain("\n");
  });

  it("import checks its target before the service is called (400)", async () => {
    const r = await raw(unix(), "POST", "/v1.41/images/create?fromSrc=-&repo=UPPER", "not read");
    expect(r.status).toBe(400);
    expect((JSON.parse(r.body) as { message: string }).message).toMatch(/must be lowercase/);
  });

  it("what berth does not download says so (501): a rootfs URL, every tag of a repository", async () => {
    for (const [m, p] of [
      ["POST", "/v1.41/images/create?fromSrc=http://example.invalid/rootfs.tar"],
      ["POST", "/v1.41/images/create?fromImage=busybox&tag="],
      ["POST", "/v1.41/images/busybox/push?tag="],
    ] as const) {
      const r = await raw(unix(), m, p);
      expect(r.status, p).toBe(501);
      expect((JSON.parse(r.body) as { message: string }).message).toMatch(/^berth does not implement .* yet: /);
    }
  });

  it("pull, push and login check their input before the service is called (400)", async () => {
    for (const [p, body, words] of [
      ["/v1.41/images/create?fromImage=UPPER&tag=1", undefined, "lowercase"],
      ["/v1.41/images/create?fromImage=busybox&tag=bad%20tag", undefined, "invalid tag format"],
      ["/v1.41/images/busybox/push?tag=bad%20tag", undefined, "invalid tag format"],
      ["/v1.41/auth", "not json", "not JSON"],
      ["/v1.41/auth", "[1]", "not a JSON object"],
      ["/v1.41/auth", JSON.stringify({ username: "x".repeat(70_000) }), "larger than"],
    ] as const) {
      const r = await raw(unix(), "POST", p, body);
      expect(r.status, p).toBe(400);
      expect((JSON.parse(r.body) as { message: string }).message, p).toContain(words);
    }
  });

  it("an X-Registry-Auth that is not base64 JSON is 400 before the service is called", async () => {
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ ...unix(), method: "POST", path: "/v1.41/images/create?fromImage=busybox&tag=1", headers: { "X-Registry-Auth": "%%%notbase64" } }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });
    expect(r.status).toBe(400);
    expect(r.body).toContain("X-Registry-Auth");
  });

  it("OPTIONS answers 200 (dockerd's preflight)", async () => {
    expect((await raw(unix(), "OPTIONS", "/v1.41/images/json")).status).toBe(200);
  });
});

describe("filters", () => {
  it("filters that are not JSON: 400 with a clear message (dockerd 20.10 answers 500)", async () => {
    const rec = (await rawRecording("images-filters-bad")).exchanges[0]!;
    expect(rec.status).toBe(500);
    const r = await raw(unix(), "GET", `/v1.41/images/json?filters=${encodeURIComponent("{bad")}`);
    expect(r.status).toBe(400);
    expect((JSON.parse(r.body) as { message: string }).message).toMatch(/^invalid filters "\{bad": /);
  });
});
