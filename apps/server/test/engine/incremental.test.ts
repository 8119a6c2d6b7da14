/**
 * The negotiated incremental load through `berth serve` (issue 14, "Beyond
 * dockerd"): berth's own client asks which layers the server has, sends an
 * archive without them, and the server completes the images from its store;
 * the endpoints refuse bad input with 400 and a stock client is unaffected.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chainIds } from "@berth/digest";
import { DockerClient } from "@berth/docker-archive";
import { ImageService } from "@berth/image-service";
import { makeTar } from "@berth/image-store/tar-fixture";
import { openStore } from "@berth/image-store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServingStore, serveStore } from "../../src/index.js";
import { raw } from "./helpers.js";

let dir: string;
let server: ServingStore;
let src: ImageService;
let client: DockerClient;

const stream = (bytes: Uint8Array) =>
  (async function* () {
    yield bytes;
  })();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-incremental-"));
  server = await serveStore({ root: join(dir, "served"), port: 0, socketPath: join(dir, "berth.sock"), log: { format: "none" }, sweepIntervalMs: 0 });
  src = new ImageService(await openStore({ root: join(dir, "client") }));
  // a 4 MB base (random: it does not compress) and a small app layer on it
  const random = new Uint8Array(4 << 20).map((_, i) => (i * 2654435761) >>> 24);
  await src.import(stream(makeTar({ "base.bin": random })), { tags: ["base:1"] });
  await src.build({ base: "base:1", layers: [stream(makeTar({ "app.txt": "the app\n" }))], tags: ["app:1"] });
  client = new DockerClient({ host: `unix://${server.socketPath}` });
});
afterAll(async () => {
  await src?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("negotiated incremental load against berth serve", () => {
  it("/_ping says Berth-Api: 1", async () => {
    const r = await raw({ socketPath: server.socketPath! }, "GET", "/_ping");
    expect(r.headers["berth-api"]).toBe("1");
    expect(await client.berthApi()).toBe(1);
  });

  it("berth docker push sends only the layers the server lacks, and the server completes the image", async () => {
    const first = await src.pushToDaemon(["base:1"], { client });
    expect(first.negotiated).toBe(true);
    expect(first.layersSkipped).toBe(0);
    const r = await src.pushToDaemon(["app:1"], { client });
    expect(r.negotiated).toBe(true);
    expect(r.fellBack).toBe(false);
    expect(r.layersSkipped).toBe(1);
    expect(r.layers.map((l) => l.present)).toEqual([true, false]);
    // the base's 4 MB stay home: the archive is the app layer, config and manifest.json
    expect(r.bytesSent).toBeLessThan(64 * 1024);
    expect(first.bytesSent).toBeGreaterThan(4 << 20);
    const app = await src.inspect("app:1");
    const served = await server.service.inspect("app:1");
    expect(served.id).toBe(app.id);
    expect(chainIds(served.config.rootfs.diff_ids)).toEqual(chainIds(app.config.rootfs.diff_ids));
    // the lookup's lease went with the load: nothing is left protecting the layers
    expect((await server.service.fsck()).ok).toBe(true);
  });

  it("refuses a lookup that is not JSON, not an object, not digests, or too large (400, the reason)", async () => {
    const target = { socketPath: server.socketPath! };
    for (const [body, words] of [
      ["nope", "not JSON"],
      ["[]", "must be an object"],
      ['{"chainIDs": ["sha256:abc"]}', "chainIDs[0] is not a sha256 digest"],
      [JSON.stringify({ chainIDs: "x".repeat(400_000) }), "larger than"],
    ] as const) {
      const r = await raw(target, "POST", "/berth/v1/layers/lookup", body);
      expect(r.status, body.slice(0, 40)).toBe(400);
      expect(JSON.parse(r.body).message).toContain(words);
    }
  });

  it("a load naming an unknown lease fails in the message stream before reading the archive", async () => {
    const r = await raw({ socketPath: server.socketPath! }, "POST", "/images/load?berth-lease=0123", "not an archive");
    expect(r.status).toBe(200);
    expect(r.body).toContain("no layer lookup");
  });
});
