/**
 * The client when no daemon answers (no peers needed): `ping()` says false
 * instead of throwing, and `loadIntoDaemon` of an image the store does not
 * have reports that (ERR_IMAGE_NOT_FOUND) before it tries the daemon.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DockerClient, loadIntoDaemon } from "../src/index.js";
import { tempStore } from "./helpers.js";

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
