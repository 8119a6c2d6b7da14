/**
 * Cache that survives an archive (moby#20380): a berth store with a locally
 * built chain is saved with the parent chain in extra files; plain `docker load`
 * still accepts the archive (and, as always, loses the cache), while a berth
 * store that loads it and restores the chain gets every parent-chain hit.
 * Skips without dockerd; fails under BERTH_REQUIRE_PEERS=1.
 */
import path from "node:path";
import { load, save } from "@berth/docker-archive";
import { openStore, type Store } from "@berth/image-store";
import { BUSYBOX_TAG, buildImage, busyboxBase, dockerd, dockerLoad, dockerSave, inspect } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectParentChain, readParentChain, restoreParentChain } from "../src/archive.js";
import { createCache } from "../src/classic.js";
import { hostArchitecture } from "@berth/oci";
import { tempDir } from "./helpers.js";
import { type ChainImage, nonce, parentChain, parseClassicBuild, probeFor } from "./peer-util.js";

const peer = await dockerd();
const platform = { os: "linux", architecture: hostArchitecture() };

async function replay(store: Store, base: string, chain: ChainImage[]): Promise<string[]> {
  const cache = await createCache(store);
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

describe.skipIf(!peer)("parent chain through an archive", () => {
  let work: string;
  let cleanup: () => Promise<void>;
  let base: string;
  const stores: Store[] = [];
  beforeAll(async () => {
    ({ dir: work, cleanup } = await tempDir());
    base = await busyboxBase(peer!);
  });
  afterAll(async () => {
    const tags = (await peer!.run(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.split("\n").filter((t) => t.startsWith("berth-cache-archive/"));
    if (tags.length > 0) await peer!.docker(["rmi", "-f", ...tags]);
    for (const s of stores) await s.close();
    await cleanup();
  });

  it("save with collectParentChain → docker load accepts it; berth load + restoreParentChain hits every step", async () => {
    const n = nonce();
    const tag = `berth-cache-archive/app-${n}:1`;
    const df = [`FROM ${BUSYBOX_TAG}`, `ENV NONCE=${n}`, "WORKDIR /w", "COPY f.txt /w/", "RUN cat f.txt > g.txt", 'CMD ["cat", "/w/g.txt"]', ""].join("\n");
    const files = { "f.txt": { content: "carried\n", mtime: 0 } };
    const b1 = await buildImage(peer!, { tag, dockerfile: df, files });
    const chain = await parentChain(peer!, b1.id, base);

    // Machine A: berth holds the locally built chain.
    const fromDocker = path.join(work, "a.tar");
    await dockerSave(peer!, [...chain.map((c) => c.id), BUSYBOX_TAG], fromDocker);
    const a = await openStore({ root: path.join(work, "a") });
    stores.push(a);
    await load(a, fromDocker);
    let parent = base;
    for (const c of chain) {
      await a.images.setParent(c.id, parent);
      await a.images.setBuiltLocally(c.id);
      parent = c.id;
    }
    await a.references.tag(tag, b1.id);
    expect(await replay(a, base, chain)).toEqual(chain.map((c) => c.id));

    const exported = await collectParentChain(a, [tag, BUSYBOX_TAG]);
    expect(exported.chain.map((e) => e.id)).toEqual([base, ...chain.map((c) => c.id)]);
    expect(exported.carried).toEqual(chain.slice(0, -1).map((c) => c.id));
    const archive = path.join(work, "with-cache.tar");
    await save(a, [tag, BUSYBOX_TAG], archive, { extraFiles: exported.files });

    // Plain docker load accepts it (and, like any docker archive, carries no cache).
    await peer!.run(["rmi", tag]);
    expect(await dockerLoad(peer!, archive)).toContain(tag);
    expect((await inspect(peer!, tag)).Id).toBe(b1.id);
    const rebuilt = await buildImage(peer!, { tag: `${tag}-again`, dockerfile: df, files });
    expect(parseClassicBuild(rebuilt.output)[1]?.cached).toBe(false);

    // Machine B: a berth load alone misses (moby#20380) …
    const b = await openStore({ root: path.join(work, "b") });
    stores.push(b);
    await load(b, archive);
    expect(await replay(b, base, chain)).toEqual([]);
    // … and restoring the carried chain brings every hit back, with the same IDs.
    const extra = await readParentChain(archive);
    expect(extra.map((f) => f.name).sort()).toEqual(exported.files.map((f) => f.name).sort());
    const restored = await restoreParentChain(b, extra);
    expect(restored.skipped).toEqual([]);
    expect(restored.created.sort()).toEqual([...exported.carried].sort());
    expect(restored.builtLocally).toBe(chain.length);
    expect(await replay(b, base, chain)).toEqual(chain.map((c) => c.id));
  });
});
