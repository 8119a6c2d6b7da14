/**
 * The server process: option checks (no off-loopback listening without
 * auth), the TLS ClientHello answer on a plain port, HTTPS with a real
 * certificate, the unix socket (stale and live), head/URL/timeout limits,
 * faces mounted by path, graceful shutdown (finish, then abort, nothing
 * half-written), SIGTERM handling, and the text log format.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { hasCode } from "@berth/digest";
import { execOk, requirePeer } from "@berth/peers";
import { afterAll, describe, expect, it, vi } from "vitest";
import { SERVER_ERROR_CODES, startServer } from "../src/index.js";
import { mountTable } from "../src/mount.js";
import { checkListen, isLoopbackHost } from "../src/options.js";
import { startBerth, tempDir } from "./helpers.js";
import type { MemoryBackend } from "./memory-backend.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const openssl = await requirePeer("openssl");

/** Send raw bytes, collect everything until the server closes. */
function raw(port: number, bytes: Buffer | string, opts: { end?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? resolve(Buffer.concat(chunks).toString()) : reject(e)));
    s.on("close", () => resolve(Buffer.concat(chunks).toString()));
    s.write(bytes);
    if (opts.end) s.end();
  });
}

/** A request over a unix socket or TCP; resolves with status and body. */
function get(options: { socketPath?: string; port?: number; path: string; method?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ ...options, host: "127.0.0.1", method: options.method ?? "GET" }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("options", () => {
  it("refuses to listen off loopback without auth, unless told to", async () => {
    let err: unknown;
    try {
      await startServer({ host: "0.0.0.0", port: 0 });
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, SERVER_ERROR_CODES.unsafeListen)).toBe(true);
    expect(() => checkListen({ host: "::", allowRemoteWithoutAuth: true })).not.toThrow();
    expect(() => checkListen({ host: "10.0.0.1", auth: { mode: "basic", htpasswd: "/x" } })).not.toThrow();
    expect(["127.0.0.1", "127.3.2.1", "::1", "localhost", "[::1]"].every(isLoopbackHost)).toBe(true);
    expect(["0.0.0.0", "::", "192.168.1.1", "example.com"].some(isLoopbackHost)).toBe(false);
  });

  it("refuses bad options with ERR_SERVER_OPTION, and a used port with ERR_SERVER_ADDRESS_IN_USE", async () => {
    for (const bad of [{ port: 70000 }, { limits: { maxManifestSize: -1 } }, { limits: { nope: 1 } as never }, { shutdownGraceMs: -5 }]) {
      let err: unknown;
      try {
        await startServer({ port: 0, log: { format: "none" }, ...bad });
      } catch (e) {
        err = e;
      }
      expect(hasCode(err, SERVER_ERROR_CODES.invalidOption)).toBe(true);
    }
    const a = await startServer({ port: 0, log: { format: "none" } });
    try {
      await expect(startServer({ port: a.port, log: { format: "none" } })).rejects.toMatchObject({ code: SERVER_ERROR_CODES.addressInUse });
    } finally {
      await a.close();
    }
  });
});

describe("listeners", () => {
  it("answers a TLS ClientHello on the plain port at once with 400 and a close", async () => {
    const { server } = await startBerth();
    try {
      // The start of a real ClientHello; the server must answer without waiting for more.
      const hello = Buffer.from("16030100c4010000c00303", "hex");
      const answer = await raw(server.port, hello);
      expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(answer).toContain("plain HTTP, not TLS");
    } finally {
      await server.close();
    }
  });

  it.skipIf(!openssl)("serves HTTPS with a certificate and key", async () => {
    const cert = join(tmp.dir, "cert.pem");
    const key = join(tmp.dir, "key.pem");
    await execOk(openssl!, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
    const { server } = await startBerth({ tls: { cert: { path: cert }, key: { path: key } } });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpsRequest(`${server.url}/v2/`, { ca: [readFileSync(cert)] }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
      });
      expect(status).toBe(200);
      await expect(get({ port: server.port, path: "/v2/" })).rejects.toThrow();
    } finally {
      await server.close();
    }
  });

  it("refuses TLS material it cannot read with ERR_SERVER_TLS", async () => {
    await expect(startServer({ port: 0, tls: { cert: { path: "/nonexistent" }, key: { path: "/nonexistent" } } })).rejects.toMatchObject({
      code: SERVER_ERROR_CODES.tls,
    });
  });

  it("listens on a unix socket too; replaces a stale socket; refuses a live one or a file", async () => {
    const sock = join(tmp.dir, "berth.sock");
    const a = await startBerth({ socketPath: sock });
    expect((await get({ socketPath: sock, path: "/v2/" })).status).toBe(200);
    await expect(startBerth({ socketPath: sock })).rejects.toMatchObject({ code: SERVER_ERROR_CODES.addressInUse });
    await a.server.close();
    // A server killed with SIGKILL leaves its socket file behind.
    const child = spawn(process.execPath, ["-e", "require('net').createServer().listen(process.argv[1], () => console.log('up'))", sock], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise((r) => child.stdout.once("data", r));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const b = await startBerth({ socketPath: sock });
    try {
      expect((await get({ socketPath: sock, path: "/v2/" })).status).toBe(200);
    } finally {
      await b.server.close();
    }
    const file = join(tmp.dir, "not-a-socket");
    writeFileSync(file, "keep me");
    await expect(startBerth({ socketPath: file })).rejects.toMatchObject({ code: SERVER_ERROR_CODES.listen });
    expect(readFileSync(file, "utf8")).toBe("keep me");
  });
});

describe("limits", () => {
  it("431 for an oversized head, 414 for a long URL, 408 and a close for a slow head", async () => {
    const { server, log } = await startBerth({ limits: { maxHeaderSize: 2048, maxUrlLength: 512, headersTimeoutMs: 500 } });
    try {
      const big = await raw(server.port, `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(4096)}\r\n\r\n`);
      expect(big).toMatch(/^HTTP\/1\.1 431 /);
      const long = await get({ port: server.port, path: `/v2/${"a".repeat(600)}/tags/list` });
      expect(long.status).toBe(414);
      const slow = await raw(server.port, "GET /v2/ HTTP/1.1\r\nHost: x\r\n");
      expect(slow).toMatch(/^HTTP\/1\.1 408 /);
      expect(log.some((e) => e.status === 414 && e.error === "URI_TOO_LONG")).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe("the idle timeout", () => {
  it("closes a connection the client leaves idle, not one the server is still answering", async () => {
    const engine = async (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
      for await (const _ of req); // the whole body, then work past the idle timeout before answering
      await new Promise((r) => setTimeout(r, 900));
      res.writeHead(200, { "Content-Type": "text/plain" }).end("done");
    };
    const { server } = await startBerth({ engine, limits: { idleTimeoutMs: 300 } });
    try {
      const slowWork = await get({ port: server.port, path: "/_ping" });
      expect(slowWork).toEqual({ status: 200, body: "done" });
      // a connection that sends nothing is closed after the idle time
      const closedAfter = await new Promise<number>((resolve, reject) => {
        const t = Date.now();
        const sock = connect(server.port, "127.0.0.1");
        sock.on("error", reject);
        sock.on("close", () => resolve(Date.now() - t));
      });
      expect(closedAfter).toBeGreaterThanOrEqual(250);
    } finally {
      await server.close();
    }
  });
});

describe("faces", () => {
  it("the mount table: off loopback, TCP clients do not reach the engine and ui faces", () => {
    const f = (name: string) => Object.assign(async () => {}, { label: name });
    const [registry, token, engine, ui] = ["registry", "token", "engine", "ui"].map(f);
    const local = mountTable({ registry: registry!, token: { path: "/token", face: token! }, engine: engine!, ui: ui!, openFacesOnTcp: true });
    const remote = mountTable({ registry: registry!, token: { path: "/token", face: token! }, engine: engine!, ui: ui!, openFacesOnTcp: false });
    expect([local("/v2/", true), local("/token", true), local("/_ping", true), local("/ui/x", true)]).toEqual([registry, token, engine, ui]);
    expect([remote("/v2/a/tags/list", true), remote("/token", true)]).toEqual([registry, token]);
    expect(remote("/_ping", true)).not.toBe(engine);
    expect(remote("/ui/", true)).not.toBe(ui);
    expect([remote("/_ping", false), remote("/ui/", false)]).toEqual([engine, ui]);
  });


  it("mounts the engine and ui faces by path; without them, other paths are a JSON 404", async () => {
    const engine = async (_req: unknown, res: import("node:http").ServerResponse) => {
      res.writeHead(200, { "Content-Type": "text/plain" }).end("engine");
    };
    const ui = async (_req: unknown, res: import("node:http").ServerResponse) => {
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ui");
    };
    const withFaces = await startBerth({ engine, ui });
    const without = await startBerth();
    try {
      expect(await get({ port: withFaces.server.port, path: "/_ping" })).toEqual({ status: 200, body: "engine" });
      expect(await get({ port: withFaces.server.port, path: "/v1.44/images/json" })).toEqual({ status: 200, body: "engine" });
      expect(await get({ port: withFaces.server.port, path: "/ui/images" })).toEqual({ status: 200, body: "ui" });
      expect((await get({ port: withFaces.server.port, path: "/v2/" })).status).toBe(200);
      const missing = await get({ port: without.server.port, path: "/_ping" });
      expect(missing.status).toBe(404);
      expect(JSON.parse(missing.body).errors[0].code).toBe("UNSUPPORTED");
    } finally {
      await withFaces.server.close();
      await without.server.close();
    }
  });

  it("a face that throws gets a 500 with no detail, and the log has the cause", async () => {
    const engine = async () => {
      throw new Error("boom inside");
    };
    const { server, log } = await startBerth({ engine });
    try {
      const r = await get({ port: server.port, path: "/info" });
      expect(r.status).toBe(500);
      expect(r.body).not.toContain("boom");
      await vi.waitFor(() => expect(log.at(-1)).toMatchObject({ status: 500, cause: "Error: boom inside" }));
    } finally {
      await server.close();
    }
  });
});

describe("shutdown", () => {
  /** Start a PATCH that sends `sent` of `total` bytes and waits; resolves once the backend is receiving it. */
  async function stalledUpload(base: string, backend: MemoryBackend, sent: number, total: number) {
    const post = await fetch(`${base}/v2/shut/down/blobs/uploads/`, { method: "POST" });
    const location = post.headers.get("location")!;
    let status = 0;
    const req = httpRequest(new URL(location, base), { method: "PATCH", headers: { "Content-Length": String(total) } });
    const done = new Promise<number>((resolve) => {
      req.on("response", (res) => {
        res.resume();
        status = res.statusCode ?? 0;
        resolve(status);
      });
      req.on("error", () => resolve(-1));
    });
    req.write(Buffer.alloc(sent, 1));
    const id = location.split("/").pop()!;
    await vi.waitFor(() => expect(backend.uploads.get(id)?.offset).toBe(sent), { timeout: 10_000 });
    return { req, done, location };
  }

  it("finishes a request in flight within the grace period, then closes", async () => {
    const { server, backend } = await startBerth({ shutdownGraceMs: 5_000 });
    const up = await stalledUpload(server.url, backend, 10, 20);
    const closing = server.close();
    await new Promise((r) => setTimeout(r, 50));
    await expect(fetch(`${server.url}/v2/`)).rejects.toThrow();
    up.req.end(Buffer.alloc(10, 1));
    expect(await up.done).toBe(202);
    await closing;
    const id = up.location.split("/").pop()!;
    expect(backend.uploads.get(id)?.offset).toBe(20);
  });

  it("aborts what is still running after the grace period; nothing half-written becomes a blob", async () => {
    const { server, backend, log } = await startBerth({ shutdownGraceMs: 200 });
    const up = await stalledUpload(server.url, backend, 10, 1000);
    await server.close();
    expect(await up.done).toBe(-1);
    expect(backend.blobs.size).toBe(0);
    // The log line is written when the aborted request's socket closes; wait for it, not a fixed time.
    await vi.waitFor(() => expect(log.some((e) => e.method === "PATCH" && e.aborted)).toBe(true), { timeout: 5000 });
  });

  it("stops on SIGTERM (handleSignals) and exits cleanly", async () => {
    const dist = fileURLToPath(new URL("../dist/index.js", import.meta.url));
    const script = `
      const { startServer } = await import(${JSON.stringify(dist)});
      const s = await startServer({ port: 0, handleSignals: true, log: { format: "none" } });
      console.log(s.port);
      await s.closed;
      console.log("closed");
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const port = await new Promise<number>((resolve) =>
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        if (/^\d+\n/.test(out)) resolve(Number(out.trim().split("\n")[0]));
      }),
    );
    expect((await get({ port, path: "/v2/" })).status).toBe(404);
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    expect(code).toBe(0);
    expect(out).toContain("closed");
  });
});

describe("log", () => {
  it("writes text lines: time, remote, user, request, status, bytes, duration, face, id, error", async () => {
    const lines: string[] = [];
    const { server } = await startBerth({ log: { format: "text", write: (l) => lines.push(l) } });
    try {
      await fetch(`${server.url}/v2/a/blobs/sha256:${createHash("sha256").update("x").digest("hex")}`);
      await vi.waitFor(() =>
        expect(lines.at(-1)).toMatch(
          /^\d{4}-\d\d-\d\dT[\d:.]+Z 127\.0\.0\.1 - "GET \/v2\/a\/blobs\/sha256:[0-9a-f]{64}" 404 \d+ [\d.]+ms registry id=\S+ error=BLOB_UNKNOWN\n$/,
        ),
      );
    } finally {
      await server.close();
    }
  });
});
