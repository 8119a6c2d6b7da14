/**
 * The client when no daemon answers (no peers needed): `ping()` says false
 * instead of throwing, and `loadIntoDaemon` of an image the store does not
 * have reports that (ERR_IMAGE_NOT_FOUND) before it tries the daemon.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DockerClient, loadIntoDaemon } from "../src/index.js";
import { tempStore } from "./helpers.js";
import { makeCerts } from "./tls-certs.js";

const dir = mkdtempSync(join(tmpdir(), "berth-daemon-down-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const missingSocket = `unix://${join(dir, "no.sock")}`;

/** A tcp port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("ping() when the daemon is down", () => {
  it("resolves false for a unix socket that does not exist", async () => {
    await expect(new DockerClient({ host: missingSocket }).ping()).resolves.toBe(false);
  });

  it("resolves false for a tcp port that refuses connections", async () => {
    const port = await closedPort();
    await expect(new DockerClient({ host: `tcp://127.0.0.1:${port}` }).ping()).resolves.toBe(false);
  });
});

describe("loadIntoDaemon of an image the store does not have", () => {
  for (const incremental of [false, true]) {
    it(`${incremental ? "incremental" : "full"}: ERR_IMAGE_NOT_FOUND, not the daemon's error`, async () => {
      const t = await tempStore();
      try {
        await expect(loadIntoDaemon(t.store, "berth-test/nope:1", { host: missingSocket, incremental })).rejects.toMatchObject({
          code: "ERR_IMAGE_NOT_FOUND",
        });
      } finally {
        await t.cleanup();
      }
    });
  }

  it("even when the daemon address cannot be used at all (ssh://)", async () => {
    const t = await tempStore();
    try {
      await expect(loadIntoDaemon(t.store, "berth-test/nope:1", { host: "ssh://nobody@127.0.0.1" })).rejects.toMatchObject({
        code: "ERR_IMAGE_NOT_FOUND",
      });
    } finally {
      await t.cleanup();
    }
  });
});

describe("TLS to something that does not speak it", () => {
  it("a plain-HTTP daemon behind DOCKER_TLS_VERIFY: ERR_DOCKER_TLS, not a parse error", async () => {
    const certs = join(dir, "certs");
    mkdirSync(certs);
    makeCerts(certs);
    const server = createHttpServer((_req, res) => res.end("OK"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as { port: number }).port;
      const env = { DOCKER_HOST: `tcp://127.0.0.1:${port}`, DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: certs, DOCKER_CONFIG: dir };
      await expect(new DockerClient({ env }).ping()).rejects.toMatchObject({ code: "ERR_DOCKER_TLS" });
      // the same address without TLS answers
      await expect(new DockerClient({ env: { DOCKER_HOST: env.DOCKER_HOST, DOCKER_CONFIG: dir } }).ping()).resolves.toBe(true);
    } finally {
      server.close();
    }
  });
});

describe("layerChains() while another client removes images", () => {
  it("leaves out an image that is gone by the time it is inspected", async () => {
    const alive = "sha256:" + "a".repeat(64);
    const gone = "sha256:" + "b".repeat(64);
    const layers = ["sha256:" + "1".repeat(64), "sha256:" + "2".repeat(64)];
    const server = createHttpServer((req, res) => {
      const url = decodeURIComponent(req.url ?? "");
      if (url.startsWith("/images/json")) return res.end(JSON.stringify([{ Id: gone }, { Id: alive }]));
      if (url === `/images/${alive}/json`) return res.end(JSON.stringify({ Id: alive, RootFS: { Type: "layers", Layers: layers } }));
      res.statusCode = 404;
      res.end(JSON.stringify({ message: `No such image: ${gone}` }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const client = new DockerClient({ host: `tcp://127.0.0.1:${(server.address() as { port: number }).port}` });
      const chains = await client.layerChains();
      expect([...chains]).toEqual([layers[0], expect.stringMatching(/^sha256:[0-9a-f]{64}$/)]);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
