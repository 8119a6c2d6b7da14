/**
 * The proxy passes requests and responses through unchanged (status,
 * headers, framing, bodies both ways) and records them; bodies are classified
 * as the recordings keep them; the fixture archives are the same bytes on
 * every run and give the image IDs the committed recordings were made with.
 */
import { readFile } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classify, parseJsonStream, type RecordingProxy, startRecordingProxy, writeFixtureArchives } from "../src/index.js";

let dir: string;
let upstream: Server;
let proxy: RecordingProxy;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "docker-proxy-test-"));
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.url === "/stream") {
        // chunked, several writes, like dockerd's load progress
        res.writeHead(200, { "Content-Type": "application/json", "Api-Version": "1.41" });
        res.write('{"status":"Loading layer","id":"a"}\r\n');
        setTimeout(() => res.end('{"stream":"Loaded image: x:1\\n"}\r\n'), 10);
        return;
      }
      const body = JSON.stringify({ got: Buffer.concat(chunks).toString("utf8"), url: req.url });
      res.writeHead(req.url?.startsWith("/missing") ? 404 : 200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => upstream.listen(join(dir, "up.sock"), () => r()));
  proxy = await startRecordingProxy({ upstreamSocket: join(dir, "up.sock"), listen: { socketPath: join(dir, "proxy.sock") } });
});
afterAll(async () => {
  await proxy.close();
  await new Promise<void>((r) => upstream.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

function send(method: string, path: string, body?: string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request({ socketPath: join(dir, "proxy.sock"), method, path, headers: body ? { "Content-Type": "text/plain" } : {} }, (res) => {
      const c: Buffer[] = [];
      res.on("data", (b: Buffer) => c.push(b));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(c).toString("utf8") }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("startRecordingProxy", () => {
  it("forwards unchanged and records method, path, query (repeated keys kept), headers, status and bodies", async () => {
    expect(proxy.host).toBe(`unix://${join(dir, "proxy.sock")}`);
    const r = await send("POST", "/v1.41/images/localhost:5000/x/y:z/tag?repo=a&tag=1&names=x&names=y", "hello");
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ got: "hello", url: "/v1.41/images/localhost:5000/x/y:z/tag?repo=a&tag=1&names=x&names=y" });
    const missing = await send("GET", "/missing");
    expect(missing.status).toBe(404);
    const [ex, ex404] = await proxy.take();
    expect(ex).toMatchObject({
      method: "POST",
      path: "/v1.41/images/localhost:5000/x/y:z/tag",
      query: { repo: "a", tag: "1", names: ["x", "y"] },
      requestBody: { kind: "text", text: "hello" },
      status: 200,
      responseHeaders: { "content-type": "application/json", "content-length": String(r.body.length) },
      responseBody: { kind: "json", value: JSON.parse(r.body) },
    });
    expect(ex!.requestHeaders["content-type"]).toBe("text/plain");
    expect(ex404!.status).toBe(404);
    expect(proxy.exchanges).toHaveLength(0);
  });

  it("keeps a chunked stream chunked and records it as its messages", async () => {
    const r = await send("POST", "/stream");
    expect(r.headers["transfer-encoding"]).toBe("chunked");
    expect(r.body).toBe('{"status":"Loading layer","id":"a"}\r\n{"stream":"Loaded image: x:1\\n"}\r\n');
    const [ex] = await proxy.take();
    expect(ex!.responseBody).toEqual({ kind: "json-stream", messages: [{ status: "Loading layer", id: "a" }, { stream: "Loaded image: x:1\n" }] });
    expect(ex!.responseHeaders["api-version"]).toBe("1.41");
  });
});

describe("bodies", () => {
  it("JSON, JSON streams, text, binary, empty", async () => {
    expect(await classify(Buffer.from('{"a":1}'), "application/json")).toEqual({ kind: "json", value: { a: 1 } });
    expect(await classify(Buffer.from('{"a":"}{"}{"b":[1]}\n'), "application/json")).toEqual({ kind: "json-stream", messages: [{ a: "}{" }, { b: [1] }] });
    expect(await classify(Buffer.from("OK"), "text/plain")).toEqual({ kind: "text", text: "OK" });
    expect(await classify(Buffer.alloc(0), undefined)).toEqual({ kind: "empty" });
    const bin = await classify(Buffer.from([0, 1, 2, 255]), "application/octet-stream");
    expect(bin).toMatchObject({ kind: "binary", size: 4 });
    expect(parseJsonStream('{"a":1} x')).toBeUndefined();
  });

  it("a tar as its entries, never its bytes", async () => {
    const fx = await writeFixtureArchives(join(dir, "fx"));
    const rec = await classify(await readFile(fx.images), "application/x-tar");
    expect(rec.kind).toBe("tar");
    const names = (rec as { entries: Array<{ name: string }> }).entries.map((e) => e.name);
    expect(names).toContain("manifest.json");
    expect(names.filter((n) => n.endsWith("/layer.tar"))).toHaveLength(5);
    expect(JSON.stringify(rec).length).toBeLessThan(4096);
  });
});

describe("writeFixtureArchives", () => {
  it("writes the same bytes every time, with the image IDs the committed recordings hold", async () => {
    const a = await writeFixtureArchives(join(dir, "a"));
    const b = await writeFixtureArchives(join(dir, "b"));
    for (const k of ["images", "load", "bad"] as const) expect(await readFile(a[k])).toEqual(await readFile(b[k]));
    const index = JSON.parse(
      await readFile(new URL("../../../apps/server/test/engine/recordings/index.json", import.meta.url), "utf8"),
    ) as { ids: Record<string, string> };
    expect(a.ids).toEqual(index.ids);
  });
});
