/**
 * The classic cache against the real dockerd (20.10, DOCKER_BUILDKIT=0): the
 * same steps hit, and the IDs berth returns are dockerd's.
 * Skips without dockerd; fails under BERTH_REQUIRE_PEERS=1.
 */
import path from "node:path";
import { load } from "@berth/docker-archive";
import { openStore, type Store } from "@berth/image-store";
import { BUSYBOX_TAG, buildImage, busyboxBase, dockerd, dockerLoad, dockerSave } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCache } from "../src/classic.js";
import { hostArchitecture } from "@berth/oci";
import { tempDir } from "./helpers.js";
import { type ChainImage, nonce, parentChain, parseClassicBuild, probeFor, serverVersion } from "./peer-util.js";

const peer = await dockerd();
const platform = { os: "linux", architecture: hostArchitecture() };

function dockerfile(n: string, run: string): string {
  return [
    `FROM ${BUSYBOX_TAG}`,
    `ENV NONCE=${n}`,
    "LABEL org.example.stage=cache",
    "WORKDIR /work",
    "COPY f.txt /work/",
    `RUN ${run}`,
    "ENV AFTER=1",
    'ENTRYPOINT ["/bin/sh"]',
    "",
  ].join("\n");
}
const files = { "f.txt": { content: "hello cache\n", mode: 0o644, mtime: 0 } };

/** Replay probes through a berth cache until the first miss; returns the IDs returned (hits). */
async function replay(
  cache: { getCache(p: string, c: ChainImage["probe"], pl: typeof platform): Promise<string | undefined> },
  base: string,
  chain: ChainImage[],
): Promise<string[]> {
  const hits: string[] = [];
  let parent = base;
  for (const c of chain) {
    const id = await cache.getCache(parent, probeFor(c.probe, parent, c.config), platform);
    if (id === undefined) break;
    hits.push(id);
    parent = id;
  }
  return hits;
}

describe.skipIf(!peer)("classic cache vs dockerd", () => {
  let work: string;
  let cleanup: () => Promise<void>;
  let base: string;
  let version: string;
  const stores: Store[] = [];

  beforeAll(async () => {
    ({ dir: work, cleanup } = await tempDir());
    base = await busyboxBase(peer!);
    version = await serverVersion(peer!);
  });
  afterAll(async () => {
    // Leave the shared daemon as we found it: drop this file's tags (and so their intermediates).
    const tags = (await peer!.run(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.split("\n").filter((t) => t.startsWith("berth-cache-test/"));
    if (tags.length > 0) await peer!.docker(["rmi", "-f", ...tags]);
    for (const s of stores) await s.close();
    await cleanup();
  });

  it("--cache-from: after save/rmi/load the same steps hit with the same image IDs", async () => {
    const n = nonce();
    const tag1 = `berth-cache-test/cf-${n}:1`;
    const b1 = await buildImage(peer!, { tag: tag1, dockerfile: dockerfile(n, "echo hi > run.txt"), files });
    const chain1 = await parentChain(peer!, b1.id, base);
    expect(chain1).toHaveLength(7);
    const archive = path.join(work, `cf-${n}.tar`);
    await dockerSave(peer!, [tag1, BUSYBOX_TAG], archive);
    await peer!.run(["rmi", tag1]);
    await dockerLoad(peer!, archive);

    // dockerd: same Dockerfile with --cache-from.
    const b2 = await buildImage(peer!, { tag: `berth-cache-test/cf-${n}:2`, dockerfile: dockerfile(n, "echo hi > run.txt"), files, cacheFrom: [tag1] });
    const steps2 = parseClassicBuild(b2.output).slice(1); // drop FROM
    expect(steps2.map((s) => s.cached)).toEqual(chain1.map(() => true));
    const chain2 = await parentChain(peer!, b2.id, base);

    // berth: load the same archive, replay build 1's recorded configs.
    const store = await openStore({ root: path.join(work, "store-cf") });
    stores.push(store);
    await load(store, archive);
    const warnings: string[] = [];
    const cache = await createCache(store, { cacheFrom: [tag1, "berth-cache-test/missing:1"], dockerVersion: version, onWarning: (w) => warnings.push(w.code) });
    expect(warnings).toEqual(["ERR_CACHE_FROM_NOT_FOUND"]);
    const hits = await replay(cache, base, chain1);
    expect(hits.map((h) => h.slice(7, 19))).toEqual(steps2.map((s) => s.id));
    expect(hits).toEqual(chain2.map((c) => c.id));
    // The last (metadata-only ENTRYPOINT) step is the source image itself (moby#31186), parented.
    expect(hits[hits.length - 1]).toBe(b1.id);
    expect(await store.images.getParent(b1.id)).toBe(hits[hits.length - 2]);
    expect(cache.sources()).toEqual([b1.id]);

    // A changed middle step: hits stop where dockerd's did.
    const b3 = await buildImage(peer!, { tag: `berth-cache-test/cf-${n}:3`, dockerfile: dockerfile(n, "echo changed > run.txt"), files, cacheFrom: [tag1] });
    const steps3 = parseClassicBuild(b3.output).slice(1);
    const firstMiss = steps3.findIndex((s) => !s.cached);
    expect(firstMiss).toBe(4); // ENV, LABEL, WORKDIR, COPY hit; RUN misses
    expect(steps3.slice(firstMiss).every((s) => !s.cached)).toBe(true);
    const chain3 = await parentChain(peer!, b3.id, base);
    const cache3 = await createCache(store, { cacheFrom: [tag1], dockerVersion: version });
    const hits3 = await replay(cache3, base, chain3);
    expect(hits3.map((h) => h.slice(7, 19))).toEqual(steps3.slice(0, firstMiss).map((s) => s.id));
  });

  it("parent chain: build 1 committed locally, build 2 all hits, build 3 hits until the changed step", async () => {
    const n = nonce();
    const tag = `berth-cache-test/pc-${n}:1`;
    const b1 = await buildImage(peer!, { tag, dockerfile: dockerfile(n, "echo one > run.txt"), files });
    expect(parseClassicBuild(b1.output).slice(1).some((s) => s.cached)).toBe(false);
    const chain = await parentChain(peer!, b1.id, base);

    // Commit build 1 into berth: every intermediate image, its parent, built locally.
    const archive = path.join(work, `pc-${n}.tar`);
    await dockerSave(peer!, [...chain.map((c) => c.id), BUSYBOX_TAG], archive);
    const store = await openStore({ root: path.join(work, "store-pc") });
    stores.push(store);
    await load(store, archive);
    let parent = base;
    for (const c of chain) {
      await store.images.setParent(c.id, parent);
      await store.images.setBuiltLocally(c.id);
      parent = c.id;
    }

    // Build 2: dockerd hits every step; berth returns the same IDs.
    const b2 = await buildImage(peer!, { tag, dockerfile: dockerfile(n, "echo one > run.txt"), files });
    const steps2 = parseClassicBuild(b2.output).slice(1);
    expect(steps2.every((s) => s.cached)).toBe(true);
    const cache = await createCache(store);
    expect(cache.kind).toBe("local");
    const hits = await replay(cache, base, chain);
    expect(hits).toEqual(chain.map((c) => c.id));
    expect(hits.map((h) => h.slice(7, 19))).toEqual(steps2.map((s) => s.id));

    // Build 3 with a changed RUN: dockerd's hits stop there, and so do berth's.
    const b3 = await buildImage(peer!, { tag: `${tag}-3`, dockerfile: dockerfile(n, "echo three > run.txt"), files });
    const steps3 = parseClassicBuild(b3.output).slice(1);
    const firstMiss = steps3.findIndex((s) => !s.cached);
    expect(firstMiss).toBe(4);
    const chain3 = await parentChain(peer!, b3.id, base);
    const hits3 = await replay(cache, base, chain3);
    expect(hits3).toEqual(chain.slice(0, firstMiss).map((c) => c.id));
    expect(hits3.map((h) => h.slice(7, 19))).toEqual(steps3.slice(0, firstMiss).map((s) => s.id));

    // Not built locally → no hit (moby's rule), and a missing parent is a typed error.
    const fresh = await openStore({ root: path.join(work, "store-pc2") });
    stores.push(fresh);
    await load(fresh, archive);
    expect(await (await createCache(fresh)).getCache(base, probeFor(chain[0]!.probe, base), platform)).toBeUndefined();
    await expect((await createCache(fresh)).getCache(`sha256:${"0".repeat(64)}`, chain[0]!.probe, platform)).rejects.toMatchObject({
      code: "ERR_CACHE_PARENT_NOT_FOUND",
    });
  });

  it("ENTRYPOINT [] (docker/cli#3477): misses like moby by default, hits with fixEmptyEntrypoint", async () => {
    const n = nonce();
    const tag = `berth-cache-test/ep-${n}:1`;
    const df = [`FROM ${BUSYBOX_TAG}`, `ENV NONCE=${n}`, 'ENTRYPOINT ["/bin/sh"]', "RUN echo a > a.txt", "ENTRYPOINT []", "RUN echo b > b.txt", ""].join("\n");
    const b1 = await buildImage(peer!, { tag, dockerfile: df });
    const chain = await parentChain(peer!, b1.id, base);
    const b2 = await buildImage(peer!, { tag: `${tag}-2`, dockerfile: df });
    const steps2 = parseClassicBuild(b2.output).slice(1);
    // dockerd: ENV, ENTRYPOINT, RUN hit; ENTRYPOINT [] never does (nor what follows).
    expect(steps2.map((s) => s.cached)).toEqual([true, true, true, false, false]);

    const archive = path.join(work, `ep-${n}.tar`);
    await dockerSave(peer!, [...chain.map((c) => c.id), BUSYBOX_TAG], archive);
    const store = await openStore({ root: path.join(work, "store-ep") });
    stores.push(store);
    await load(store, archive);
    let parent = base;
    for (const c of chain) {
      await store.images.setParent(c.id, parent);
      await store.images.setBuiltLocally(c.id);
      parent = c.id;
    }
    const asMoby = await replay(await createCache(store), base, chain);
    expect(asMoby).toEqual(chain.slice(0, 3).map((c) => c.id));
    expect(asMoby.map((h) => h.slice(7, 19))).toEqual(steps2.slice(0, 3).map((s) => s.id));
    const fixed = await replay(await createCache(store, { fixEmptyEntrypoint: true }), base, chain);
    expect(fixed).toEqual(chain.map((c) => c.id));
  });
});
