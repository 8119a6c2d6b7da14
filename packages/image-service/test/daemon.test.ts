/**
 * The daemon verbs when no daemon answers: an image the store does not have
 * is ERR_IMAGE_NOT_FOUND (found out before the daemon is contacted), not the
 * daemon's connection error.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerClient } from "@berth/docker-archive";
import { openStore } from "@berth/image-store";
import { afterAll, describe, expect, it } from "vitest";
import { pushToDaemon, saveToDaemon } from "../src/daemon.js";

const dir = mkdtempSync(join(tmpdir(), "berth-svc-daemon-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const down = () => new DockerClient({ host: `unix://${join(dir, "no.sock")}` });

describe("daemon verbs with the daemon down", () => {
  for (const full of [false, true]) {
    it(`pushToDaemon (${full ? "full" : "incremental"}) of an image not in the store: ERR_IMAGE_NOT_FOUND`, async () => {
      const store = await openStore({ root: join(dir, `push-${full}`) });
      try {
        await expect(pushToDaemon(store, ["berth-test/nope:1"], { client: down(), full })).rejects.toMatchObject({ code: "ERR_IMAGE_NOT_FOUND" });
      } finally {
        await store.close();
      }
    });
  }

  it("saveToDaemon of an image not in the store: ERR_IMAGE_NOT_FOUND", async () => {
    const store = await openStore({ root: join(dir, "save") });
    try {
      await expect(saveToDaemon(store, "berth-test/nope:1", ["x:1"], { client: down() })).rejects.toMatchObject({ code: "ERR_IMAGE_NOT_FOUND" });
    } finally {
      await store.close();
    }
  });
});
