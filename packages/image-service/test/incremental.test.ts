/**
 * The store's half of the negotiated incremental load: lookups answer which
 * layers the store has and hold them under a lease until the load that names
 * it; the load completes its images from them.
 */
import { chainIds, type Digest } from "@berth/digest";
import { planChunks, planSave } from "@berth/docker-archive";
import { describe, expect, it } from "vitest";
import { freshService, tarStream } from "./helpers.js";

const big = (n: number) => "x".repeat(n);

/** A base image and an app on it in one service; the app's archive without the base layer. */
async function incrementalArchive() {
  const src = await freshService();
  const base = await src.svc.import(tarStream({ base: big(200_000) }), { tags: ["base:1"] });
  const app = await src.svc.build({ base: "base:1", layers: [tarStream({ app: "the app\n" })], tags: ["app:1"] });
  const chains = chainIds(app.image.config.rootfs.diff_ids);
  const plan = await planSave(src.store, ["app:1"], { format: "docker", omitChainIDs: new Set([chains[0]!]) });
  return { src, base, app, chains, plan };
}

describe("lookupLayers", () => {
  it("answers which layers the store has, in the order asked, each once", async () => {
    const { src, chains } = await incrementalArchive();
    const absent = `sha256:${"ab".repeat(32)}` as Digest;
    const r = await src.svc.lookupLayers([chains[1]!, absent, chains[0]!, chains[1]!]);
    expect(r.present).toEqual([chains[1], chains[0]]);
    expect(r.lease).toMatch(/^[a-f0-9]{32}$/);
    expect(r.expiresInSeconds).toBe(600);
  });

  it("refuses what is not a list of at most 4,096 sha256 digests (ERR_INVALID_LOOKUP)", async () => {
    const { svc } = await freshService();
    for (const bad of [undefined, "sha256:x", [42], ["sha256:abc"], Array(4097).fill(`sha256:${"0".repeat(64)}`)])
      await expect(svc.lookupLayers(bad)).rejects.toMatchObject({ code: "ERR_INVALID_LOOKUP" });
  });

  it("holds the layers through a GC until the load that names the lease, which completes the image from them", async () => {
    const { src, plan, chains, app } = await incrementalArchive();
    const dst = await freshService();
    await dst.svc.load(planChunks(await planSave(src.store, ["base:1"], { format: "docker" })));
    const answer = await dst.svc.lookupLayers(chains);
    expect(answer.present).toEqual([chains[0]]);
    // the base goes, as a concurrent rmi would take it; the lease keeps its layer
    await dst.svc.remove(["base:1"]);
    await dst.store.gc();
    expect(await dst.store.layers.has(chains[0]!)).toBe(true);
    const r = await dst.svc.load(planChunks(plan), { lookupLease: answer.lease });
    expect(r.images[0]!.id).toBe(app.id);
    expect(r.images[0]!.layers.map((l) => l.new)).toEqual([false, true]);
    // the lease went with the load: naming it again is refused before anything is read
    await expect(dst.svc.load(planChunks(plan), { lookupLease: answer.lease })).rejects.toMatchObject({ code: "ERR_UNKNOWN_LOOKUP" });
    // the image holds its layers now
    await dst.store.gc();
    expect(await dst.store.layers.has(chains[0]!)).toBe(true);
  });

  it("without a lookup, a layer the archive leaves out and the store lacks refuses the load; nothing kept", async () => {
    const { plan } = await incrementalArchive();
    const dst = await freshService();
    await expect(dst.svc.load(planChunks(plan))).rejects.toMatchObject({ code: "ERR_NOT_IN_ARCHIVE" });
    expect(await dst.svc.list()).toEqual([]);
  });
});
