/**
 * `GET /images/{name}/get` to a client that reads slowly, and to one that
 * leaves half-way: the whole archive arrives through many back-pressure
 * waits without listeners piling up on the response (the save handler once
 * left a `close` listener per wait: Node's MaxListenersExceededWarning after
 * ten), and a client that leaves ends the save while the server goes on
 * answering.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openImageService } from "@berth/image-service";
import { makeTar } from "@berth/image-store/tar-fixture";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngineApi, engineService } from "../../src/engine/index.js";

let dir: string;
let server: Server;
let socketPath: string;
let close: () => Promise<void>;
/** The most `close` listeners seen on a response while it was being written. */
let mostCloseListeners = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-save-stream-"));
  const svc = await openImageService({ root: join(dir, "store") });
  const tar = makeTar({ "blob.bin": randomBytes(24 << 20) });
  await svc.import(
    (async function* () {
      yield tar;
    })(),
    { tags: ["slow/reader:1"] },
  );
  close = () => svc.close();
  const engine = createEngineApi({ service: engineService(svc), identity: { version: "9.9.9-test" } });
  server = createServer((req, res) => {
    watch(res);
    void engine(req, res);
  });
  socketPath = join(dir, "engine.sock");
  await new Promise<void>((r) => server.listen(socketPath, r));
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await close?.();
  await rm(dir, { recursive: true, force: true });
});

/** Sample the response's `close` listeners while it is written. */
function watch(res: ServerResponse): void {
  const t = setInterval(() => {
    mostCloseListeners = Math.max(mostCloseListeners, res.listenerCount("close"));
  }, 1);
  res.once("close", () => clearInterval(t));
}

/** GET the save; `onData` may pause the response; resolves with the bytes seen and the declared length. */
function getSave(onData: (res: import("node:http").IncomingMessage, n: number) => void): Promise<{ bytes: number; length: number; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: "/v1.41/images/slow/reader:1/get" }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => {
        bytes += c.length;
        onData(res, bytes);
      });
      res.on("end", () => resolve({ bytes, length: Number(res.headers["content-length"]), aborted: false }));
      res.on("close", () => resolve({ bytes, length: Number(res.headers["content-length"]), aborted: !res.complete }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("docker save to slow and leaving clients", () => {
  it("a slow reader gets the whole archive; no listener piles up on the response", async () => {
    mostCloseListeners = 0;
    let pauses = 0;
    const got = await getSave((res) => {
      // read a little, then stop long enough for the server to fill the socket and wait for drain
      if (pauses++ % 8 === 0) {
        res.pause();
        setTimeout(() => res.resume(), 2);
      }
    });
    expect(got.aborted).toBe(false);
    expect(got.bytes).toBe(got.length);
    expect(got.bytes).toBeGreaterThan(24 << 20);
    expect(pauses).toBeGreaterThan(100);
    // the server's own (request log, abort) and one per wait in progress, not one per wait ever
    expect(mostCloseListeners).toBeGreaterThan(0);
    expect(mostCloseListeners).toBeLessThan(8);
  });

  it("a client that leaves half-way ends the save; the next request is answered", async () => {
    const got = await getSave((res, n) => {
      if (n > 4 << 20) res.destroy();
    });
    expect(got.bytes).toBeLessThan(got.length);
    const again = await getSave(() => {});
    expect(again.bytes).toBe(again.length);
  });
});
