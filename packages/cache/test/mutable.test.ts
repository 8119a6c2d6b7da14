import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chainId, sha256 } from "@berth/digest";
import { type LayerStore, openLayerStore } from "@berth/layer-store";
import { extract } from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IdentityMapping } from "../src/diff/idmap.js";
import { CacheErrorCode } from "../src/errors.js";
import { type CacheManager, openCacheManager } from "../src/records.js";
import { applyLayer } from "../src/snapshot/apply.js";
import { makeTarGz, tempDir } from "./helpers.js";
import { listTree } from "./snapshot-util.js";

let root: string;
let cleanup: () => Promise<void>;
let layers: LayerStore;
let cm: CacheManager;
let clock: number;
const now = () => new Date(clock);

beforeEach(async () => {
  ({ dir: root, cleanup } = await tempDir("berth-mutable-"));
  layers = await openLayerStore({ root });
  clock = Date.parse("2024-05-01T00:00:00Z");
  cm = await openCacheManager({ root, layers }, { now });
});
afterEach(async () => {
  await layers.close();
  await cleanup();
});

/** The bytes of a blob of the layer store. */
async function blobBytes(digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await layers.content.open(digest)) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** Names of a tar's entries, in order. */
async function tarNames(bytes: Buffer): Promise<string[]> {
  return (await tarHeaders(bytes)).map((h) => h.name);
}

/** A tar's headers, in order. */
async function tarHeaders(bytes: Buffer): Promise<Array<{ name: string; uid?: number; gid?: number }>> {
  const names: Array<{ name: string; uid?: number; gid?: number }> = [];
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on("entry", (h, stream, next) => {
      names.push({ name: h.name, uid: h.uid, gid: h.gid });
      stream.on("end", next);
      stream.resume();
    });
    ex.on("finish", resolve);
    ex.on("error", reject);
  });
  ex.end(bytes);
  await done;
  return names;
}

describe("mutable refs", () => {
  it("new on nothing → write files → commit: a layer with the tar's DiffID and a record with its ChainID", async () => {
    const m = await cm.new(null, { description: "RUN write" });
    expect(m.parent).toBeNull();
    expect(m.info()).toMatchObject({ kind: "mutable", parent: null, parentChainID: null, description: "RUN write" });
    const dir = await m.mount();
    await mkdir(path.join(dir, "etc"));
    await writeFile(path.join(dir, "etc", "hostname"), "box\n");
    await writeFile(path.join(dir, "hello.txt"), "hello\n");
    expect(await cm.mutableRecords()).toHaveLength(1);

    const ref = await m.commit();
    const layer = await layers.get(ref.chainID);
    const blob = await blobBytes(layer.blob.digest);
    // uncompressed tar: the DiffID is the digest of the bytes registered
    expect(layer.diffID).toBe(sha256(blob));
    expect(layer.parent).toBeNull();
    expect(ref.chainID).toBe(layer.diffID);
    expect(await tarNames(blob)).toEqual(["etc/", "etc/hostname", "hello.txt"]);
    const rec = await cm.record(ref.id);
    expect(rec).toMatchObject({ chainID: layer.chainID, diffID: layer.diffID, parent: null, description: "RUN write" });
    expect(await layers.holders(layer.chainID)).toContain(`cache:${ref.id}`);
    // the mutable record is gone, the snapshot is committed under the ChainID
    expect(await cm.mutableRecords()).toEqual([]);
    const snapshots = await cm.snapshotter();
    expect((await snapshots.stat(layer.chainID)).kind).toBe("committed");
    expect(await readFile(path.join(await ref.mount(), "hello.txt"), "utf8")).toBe("hello\n");
    // the ref is done
    await expect(m.mount()).rejects.toMatchObject({ code: CacheErrorCode.CACHE_REF_RELEASED });
    await expect(m.commit()).rejects.toMatchObject({ code: CacheErrorCode.CACHE_REF_RELEASED });

    // the same tree committed again gives the same DiffID (deterministic) and the same record
    const again = await cm.new();
    await mkdir(path.join(await again.mount(), "etc"));
    await writeFile(path.join(await again.mount(), "etc", "hostname"), "box\n");
    await writeFile(path.join(await again.mount(), "hello.txt"), "hello\n");
    const ref2 = await again.commit();
    expect(ref2.chainID).toBe(ref.chainID);
    expect(ref2.id).toBe(ref.id);
    expect((await snapshots.walk((s) => s.kind === "active")).map((s) => s.key)).toEqual([]);
    await ref.release();
    await ref2.release();
  });

  it("new on a ref → delete a file, replace a directory → commit: whiteout and opaque entries; both layers applied give the edited tree", async () => {
    const base = await cm.new();
    const bdir = await base.mount();
    await mkdir(path.join(bdir, "app", "lib"), { recursive: true });
    await writeFile(path.join(bdir, "app", "lib", "a.js"), "a");
    await writeFile(path.join(bdir, "app", "lib", "b.js"), "b");
    await writeFile(path.join(bdir, "app", "old.txt"), "old");
    await writeFile(path.join(bdir, "app", "keep.txt"), "keep");
    const baseRef = await base.commit();
    const baseLayer = await layers.get(baseRef.chainID);

    const child = await cm.new(baseRef, { description: "RUN edit" });
    expect(child.parent?.id).toBe(baseRef.id);
    expect(child.info().parentChainID).toBe(baseRef.chainID);
    const dir = await child.mount();
    // the parent's tree is there, writable
    expect(await readFile(path.join(dir, "app", "keep.txt"), "utf8")).toBe("keep");
    await unlink(path.join(dir, "app", "old.txt"));
    await rm(path.join(dir, "app", "lib"), { recursive: true });
    await mkdir(path.join(dir, "app", "lib"));
    await writeFile(path.join(dir, "app", "lib", "c.js"), "c");
    const edited = await listTree(dir);
    const ref = await child.commit();

    const layer = await layers.get(ref.chainID);
    expect(layer.parent).toBe(baseLayer.chainID);
    expect(ref.chainID).toBe(chainId([baseLayer.diffID, layer.diffID]));
    const rec = await cm.record(ref.id);
    expect(rec.parent).toBe(baseRef.id);
    expect(rec.description).toBe("RUN edit");
    const blob = await blobBytes(layer.blob.digest);
    expect(layer.diffID).toBe(sha256(blob));
    expect(await tarNames(blob)).toEqual(["app/", "app/lib/", "app/lib/.wh..wh..opq", "app/lib/c.js", "app/.wh.old.txt"]);

    const { dir: out, cleanup: rmOut } = await tempDir("berth-mutable-apply-");
    try {
      await applyLayer(out, [await blobBytes(baseLayer.blob.digest)]);
      await applyLayer(out, [blob]);
      expect(await listTree(out)).toEqual(edited);
      expect(edited.some((l) => l.startsWith("app/lib/c.js f 644 1 "))).toBe(true);
      expect(edited.some((l) => l.startsWith("app/old.txt") || l.startsWith("app/lib/a.js"))).toBe(false);
    } finally {
      await rmOut();
    }
    // the child's snapshot was committed under its ChainID: a grandchild prepares on it without extracting
    const grand = await cm.new(ref.chainID);
    expect(await listTree(await grand.mount())).toEqual(edited);
    await grand.release();
    await baseRef.release();
    await ref.release();
  });

  it("commit with an identity mapping writes container owners into the layer", async () => {
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    // the files are the host's (this process's) owners; in the container they are 1000:1000
    const idMapping = new IdentityMapping([{ containerID: 1000, hostID: uid, size: 1 }], [{ containerID: 1000, hostID: gid, size: 1 }]);
    const m = await cm.new();
    await writeFile(path.join(await m.mount(), "mine.txt"), "mine");
    const ref = await m.commit({ idMapping });
    const headers = await tarHeaders(await blobBytes((await layers.get(ref.chainID)).blob.digest));
    expect(headers).toEqual([{ name: "mine.txt", uid: 1000, gid: 1000 }]);
    // an owner outside the mapping is refused, and the ref stays usable
    const other = await cm.new();
    await writeFile(path.join(await other.mount(), "x"), "x");
    const narrow = new IdentityMapping([{ containerID: 0, hostID: uid + 1, size: 1 }], [{ containerID: 0, hostID: gid + 1, size: 1 }]);
    await expect(other.commit({ idMapping: narrow })).rejects.toMatchObject({ code: "ERR_UNMAPPED_ID" });
    expect(await readFile(path.join(await other.mount(), "x"), "utf8")).toBe("x");
    await other.release();
    await ref.release();
  });

  it("a mutable record survives a restart and can be reopened and committed", async () => {
    const base = await layers.register([await makeTarGz({ "base.txt": "base" })]);
    const m = await cm.new(base.chainID, { description: "RUN later" });
    await writeFile(path.join(await m.mount(), "later.txt"), "later");
    clock += 1000;
    await m.release();
    await expect(m.mount()).rejects.toMatchObject({ code: CacheErrorCode.CACHE_REF_RELEASED });

    const cm2 = await openCacheManager({ root, layers }, { now });
    const recs = await cm2.mutableRecords();
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ id: m.id, kind: "mutable", description: "RUN later", usageCount: 1, lastUsedAt: new Date(clock).toISOString() });
    expect(recs[0]?.owner).toBeUndefined();
    // released, not crashed: repair keeps it
    expect((await cm2.repair()).removedMutable).toEqual([]);

    const again = await cm2.getMutable(m.id);
    await expect(cm2.getMutable(m.id)).rejects.toMatchObject({ code: CacheErrorCode.CACHE_REF_LOCKED });
    const dir = await again.mount();
    expect(await readFile(path.join(dir, "later.txt"), "utf8")).toBe("later");
    expect(await readFile(path.join(dir, "base.txt"), "utf8")).toBe("base");
    const ref = await again.commit();
    expect((await layers.get(ref.chainID)).parent).toBe(base.chainID);
    expect(await cm2.mutableRecords()).toEqual([]);
    await ref.release();
  });

  it("du lists mutable records (size from the snapshot) and the mutable/immutable filters select them", async () => {
    const base = await cm.new();
    await writeFile(path.join(await base.mount(), "x"), "x");
    const baseRef = await base.commit();
    await baseRef.release();
    const m = await cm.new(baseRef, { description: "RUN big" });
    await writeFile(path.join(await m.mount(), "big"), Buffer.alloc(64 * 1024, 1));

    const all = await cm.du();
    expect(all).toHaveLength(2);
    const mu = all.find((u) => u.mutable);
    expect(mu).toMatchObject({ id: m.id, mutable: true, inUse: true, shared: false, parents: [baseRef.id], chainID: null, description: "RUN big" });
    expect(mu?.size).toBeGreaterThanOrEqual(64 * 1024);
    // the held mutable record holds its parent
    expect(all.find((u) => !u.mutable)).toMatchObject({ id: baseRef.id, inUse: true, mutable: false });
    expect((await cm.du({ filters: ["mutable"] })).map((u) => u.id)).toEqual([m.id]);
    expect((await cm.du({ filters: ["immutable"] })).map((u) => u.id)).toEqual([baseRef.id]);
    expect((await cm.du({ filters: ["mutable,description~=big"] })).map((u) => u.id)).toEqual([m.id]);
    await m.release();
    expect((await cm.du({ filters: ["mutable"] }))[0]?.inUse).toBe(false);
  });

  it("prune removes released mutable records and their snapshots, keeps held ones and their parents", async () => {
    const base = await cm.new();
    await writeFile(path.join(await base.mount(), "x"), "x");
    const baseRef = await base.commit();
    await baseRef.release();
    const held = await cm.new(baseRef, { description: "held" });
    const released = await cm.new(baseRef, { description: "released" });
    await writeFile(path.join(await released.mount(), "y"), "y");
    await released.release();
    const snapshots = await cm.snapshotter();

    const r1 = await cm.prune({ filters: ["mutable"] });
    expect(r1.removed.map((u) => u.id)).toEqual([released.id]);
    expect(await snapshots.find(`mutable-${released.id}`)).toBeUndefined();
    expect((await cm.mutableRecords()).map((r) => r.id)).toEqual([held.id]);
    // the parent of a (held) mutable record is kept by an unfiltered prune
    expect((await cm.prune()).removed).toEqual([]);
    expect(await cm.record(baseRef.id)).toBeDefined();

    await held.release();
    const r2 = await cm.prune();
    // the released mutable record first, then its parent in a later pass
    expect(r2.removed.map((u) => u.id)).toEqual([held.id, baseRef.id]);
    expect(await cm.mutableRecords()).toEqual([]);
    expect(await cm.records()).toEqual([]);
    expect((await snapshots.walk((s) => s.kind === "active")).length).toBe(0);
  });

  it("a process killed (SIGKILL) between new and commit leaves garbage that repair removes, parent kept", { timeout: 60_000 }, async () => {
    const base = await layers.register([await makeTarGz({ "base.txt": "base" })]);
    const here = fileURLToPath(new URL(".", import.meta.url));
    const child = spawn(process.execPath, ["--conditions=source", "--import", path.join(here, "../../layer-store/test/register-ts.mjs"), path.join(here, "workers/mutable-crash.ts"), root, base.chainID], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const id = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout?.on("data", (c: Buffer) => {
        out += c.toString();
        const m = /ready ([0-9a-f]{25})\n/.exec(out);
        if (m) resolve(m[1] as string);
      });
      child.on("exit", (code) => reject(new Error(`worker exited (${code}) before it was ready: ${out}`)));
    });
    const exited = new Promise((resolve) => child.on("exit", (_c, signal) => resolve(signal)));
    // alive: the record is in use, repair leaves it alone
    expect((await cm.du({ filters: ["mutable"] })).map((u) => [u.id, u.inUse])).toEqual([[id, true]]);
    expect((await cm.repair()).removedMutable).toEqual([]);
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");

    const after = await openCacheManager({ root, layers }, { now });
    const [u] = await after.du({ filters: ["mutable"] });
    expect(u).toMatchObject({ id, mutable: true, inUse: false, description: "killed before commit" });
    expect(u?.size).toBeGreaterThanOrEqual(10_000);
    expect((await after.repair()).removedMutable).toEqual([id]);
    expect(await after.mutableRecords()).toEqual([]);
    expect(await (await after.snapshotter()).find(`mutable-${id}`)).toBeUndefined();
    // the parent's records and its committed chain snapshot stay
    expect((await after.records()).map((r) => r.chainID)).toEqual([base.chainID]);
    expect((await (await after.snapshotter()).stat(base.chainID)).kind).toBe("committed");
  });

  it("a process killed (SIGKILL) at random moments of a commit leaves a whole layer and record, or garbage that repair removes", { timeout: 60_000 + Number(process.env.BERTH_COMMIT_KILL_TRIALS ?? 20) * 10_000 }, async () => {
    const trials = Number(process.env.BERTH_COMMIT_KILL_TRIALS ?? 20);
    const base = await layers.register([await makeTarGz({ "base.txt": "base" })]);
    const here = fileURLToPath(new URL(".", import.meta.url));
    const start = () => {
      const child = spawn(
        process.execPath,
        ["--conditions=source", "--import", path.join(here, "../../layer-store/test/register-ts.mjs"), path.join(here, "workers/mutable-crash.ts"), root, base.chainID, "commit"],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      let out = "";
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_c, signal) => resolve(signal)));
      const committing = new Promise<number>((resolve, reject) => {
        child.stdout?.on("data", (c: Buffer) => {
          out += c.toString();
          if (out.includes("committing\n")) resolve(performance.now());
        });
        void exited.then(() => reject(new Error(`worker ended before committing: ${out}`)));
      });
      committing.catch(() => {});
      return { child, exited, committing, output: () => out };
    };
    // how long an undisturbed commit takes, from "committing" to its exit
    const first = start();
    const t0 = await first.committing;
    expect(await first.exited).toBe(null);
    const duration = performance.now() - t0;
    expect(first.output()).toMatch(/committed sha256:/);
    let killedBefore = 0;
    for (let t = 0; t < trials; t++) {
      const w = start();
      await w.committing;
      await new Promise((r) => setTimeout(r, Math.random() * duration * 1.1));
      w.child.kill("SIGKILL");
      const signal = await w.exited;
      const chain = /committed (sha256:[0-9a-f]{64})/.exec(w.output())?.[1];
      if (signal === "SIGKILL" && !chain) killedBefore++;
      const where = `trial ${t} (${signal ?? "exited"}, ${chain ? "committed" : "not committed"})`;

      const after = await openCacheManager({ root, layers }, { now });
      await after.repair();
      // no mutable record or active snapshot of a dead process is left
      expect(await after.mutableRecords(), where).toEqual([]);
      expect((await (await after.snapshotter()).walk((s) => s.kind === "active")).length, where).toBe(0);
      // every record names a layer the store has whole; the base's is kept; the layer store has no damage
      const records = await after.records();
      for (const r of records) expect(await layers.has(r.chainID), where).toBe(true);
      expect(records.map((r) => r.chainID), where).toContain(base.chainID);
      if (chain) expect(records.map((r) => r.chainID), where).toContain(chain);
      const report = await layers.fsck();
      expect(report.problems.filter((p) => !p.garbage), where).toEqual([]);
    }
    if (process.env.BERTH_KILL_DEBUG) console.log(`commit kills: ${killedBefore} of ${trials} before the commit was done (commit ${duration.toFixed(0)} ms)`);
    // the kill points reach into the commit (not all after it)
    expect(killedBefore).toBeGreaterThan(0);
  });

  it("a mutable record left by a dead process is garbage: repair and prune remove it", async () => {
    const m = await cm.new(null, { description: "crashed" });
    await writeFile(path.join(await m.mount(), "half"), "half-written");
    // What a process killed between new and commit leaves: its ref marker and its owner token in the record, both dead.
    const dead = "999999999-1";
    const rec = await cm.mutableRecord(m.id);
    const file = path.join(root, "cache", "mutable", `${m.id}.json`);
    await writeFile(file, JSON.stringify({ ...rec, owner: dead }));
    const refsDir = path.join(root, "cache", "refs");
    for (const name of await readdir(refsDir)) if (name.startsWith(m.id)) await rename(path.join(refsDir, name), path.join(refsDir, `${m.id}~${dead}~000000000000`));

    // a second crashed one, for prune
    const m2 = await cm.new(null, { description: "crashed too" });
    const rec2 = await cm.mutableRecord(m2.id);
    await writeFile(path.join(root, "cache", "mutable", `${m2.id}.json`), JSON.stringify({ ...rec2, owner: dead }));
    for (const name of await readdir(refsDir)) if (name.startsWith(m2.id)) await rm(path.join(refsDir, name));

    const cm2 = await openCacheManager({ root, layers }, { now });
    expect((await cm2.du({ filters: ["mutable"] })).every((u) => !u.inUse)).toBe(true);
    const fixed = await cm2.repair();
    expect(fixed.removedMutable.sort()).toEqual([m.id, m2.id].sort());
    const snapshots = await cm2.snapshotter();
    expect(await snapshots.find(`mutable-${m.id}`)).toBeUndefined();
    expect(await cm2.mutableRecords()).toEqual([]);
    expect(existsSync(file)).toBe(false);

    // prune, too, takes a crashed record (it is not in use)
    const m3 = await cm2.new();
    const rec3 = await cm2.mutableRecord(m3.id);
    await writeFile(path.join(root, "cache", "mutable", `${m3.id}.json`), JSON.stringify({ ...rec3, owner: dead }));
    for (const name of await readdir(refsDir)) if (name.startsWith(m3.id)) await rm(path.join(refsDir, name));
    expect((await cm2.prune()).removed.map((u) => u.id)).toEqual([m3.id]);
    expect(await snapshots.find(`mutable-${m3.id}`)).toBeUndefined();

    // an active mutable snapshot no record names (a crash between record removal and snapshot removal) goes too
    await snapshots.prepare("mutable-0123456789abcdef012345678");
    expect((await cm2.repair()).removedMutable).toEqual([]);
    expect(await snapshots.find("mutable-0123456789abcdef012345678")).toBeUndefined();
    // a snapshot of another naming is not the cache's business
    await snapshots.prepare("mine");
    await cm2.repair();
    expect(await snapshots.find("mine")).toBeDefined();
  });
});
