/**
 * Against the real peers: dockerd 20.10 (docker save / load / inspect /
 * history are the oracle) and skopeo. Skips when a peer is missing, fails
 * under BERTH_REQUIRE_PEERS=1.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chainIds, type Digest, sha256 } from "@berth/digest";
import {
  classicImage,
  dockerSave,
  dockerd,
  filesImage,
  history,
  inspect,
  repeatedLayerImage,
  requirePeer,
  sharedBaseImages,
  busyboxImage,
} from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerClient, archiveSize, load, loadIntoDaemon, pullFromDaemon, save } from "../src/index.js";
import { imageOf, layerTar, legacyEntries, tarOf, tempStore } from "./helpers.js";

const peer = await dockerd();
const skopeo = await requirePeer("skopeo");
const work = mkdtempSync(join(tmpdir(), "berth-archive-peers-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function norm(tag: string): string {
  const [name, t] = tag.split(":");
  return `docker.io/${name!.includes("/") ? name : `library/${name}`}:${t}`;
}

/** A unique synthetic image (random content, so the daemon never has it). */
async function uniqueImage(opts: { gzip?: boolean; zstd?: boolean; layers?: number } = {}) {
  const layers: Uint8Array[] = [];
  for (let i = 0; i < (opts.layers ?? 2); i++)
    layers.push(await layerTar({ [`f${i}.bin`]: randomBytes(20_000 + i), [`etc/n${i}`]: `layer ${i}\n` }));
  return imageOf(layers, { gzip: !!opts.gzip, zstd: !!opts.zstd, label: randomBytes(4).toString("hex") });
}

describe.skipIf(!peer)("docker save → berth load", () => {
  let fixtures: Array<{ tag: string; id: string }>;
  let archive: string;
  let t: Awaited<ReturnType<typeof tempStore>>;
  beforeAll(async () => {
    const p = peer!;
    const classic = await classicImage(p);
    const files = await filesImage(p);
    const shared = await sharedBaseImages(p);
    const repeated = await repeatedLayerImage(p);
    const busybox = await busyboxImage(p);
    fixtures = [busybox, classic, files, shared.base, shared.a, shared.b, repeated];
    archive = join(work, "docker-save.tar");
    await dockerSave(p, fixtures.map((f) => f.tag), archive);
    t = await tempStore();
  });
  afterAll(async () => t?.cleanup());

  it("IDs, tags, DiffIDs, ChainIDs and history equal docker image inspect / docker history", async () => {
    const r = await load(t.store, archive);
    expect(r.format).toBe("docker");
    expect(r.images).toHaveLength(fixtures.length);
    for (const f of fixtures) {
      const di = await inspect(peer!, f.tag);
      const li = r.images.find((i) => i.id === di.Id);
      expect(li, f.tag).toBeDefined();
      expect(li!.tags).toContain(norm(f.tag));
      const diffs = (di as unknown as { RootFS: { Layers: string[] } }).RootFS.Layers;
      expect(li!.layers.map((l) => l.diffID)).toEqual(diffs);
      expect(li!.layers.map((l) => l.chainID)).toEqual(chainIds(diffs));
      const img = await t.store.images.get(li!.id);
      expect(img.chainID).toBe(chainIds(diffs).at(-1) ?? null);
      const h = await history(peer!, f.tag);
      const cfg = JSON.parse(Buffer.from(img.configBytes).toString()) as { history?: Array<{ created_by?: string; empty_layer?: boolean }> };
      expect((cfg.history ?? []).map((x) => x.created_by ?? "").reverse()).toEqual(h.map((x) => x.CreatedBy));
      expect(await t.store.references.resolve(f.tag)).toBe(di.Id);
      // Sizes as dockerd counts them: per layer (docker history) and the image's total.
      // (the store behind the ArchiveStore view is @berth/image-store's, whose layers and images carry sizes)
      const layerSizes = await Promise.all(
        li!.layers.map(async (l) => ((await t.store.layers.get(l.chainID)) as { contentSize?: number }).contentSize),
      );
      const layerRows = [...h].reverse().filter((_, i) => !cfg.history?.[i]?.empty_layer);
      expect(layerSizes, f.tag).toEqual(layerRows.map((x) => x.sizeBytes));
      expect((img as { size?: number }).size, f.tag).toBe(di.Size);
    }
  });

  it("the repeated layer is stored once, with distinct ChainIDs", async () => {
    const rep = fixtures.at(-1)!;
    const img = await t.store.images.get(await t.store.references.resolve(rep.tag));
    const layers: Array<{ chainID: string; diffID: string }> = [];
    for (let c: Digest | null = img.chainID; c; ) {
      const l = await t.store.layers.get(c);
      layers.unshift(l);
      c = l.parent;
    }
    expect(layers[1]!.diffID).toBe(layers[3]!.diffID);
    expect(layers[1]!.chainID).not.toBe(layers[3]!.chainID);
  });

  it("two berth saves of the loaded images are byte-identical, size known in advance", async () => {
    const refs = fixtures.map((f) => f.tag);
    const a = join(work, "det-a.tar");
    const b = join(work, "det-b.tar");
    const size = await archiveSize(t.store, refs);
    await save(t.store, refs, a);
    await save(t.store, [...refs].reverse(), b);
    const ba = readFileSync(a);
    expect(ba.length).toBe(size);
    expect(Buffer.compare(ba, readFileSync(b))).toBe(0);
  });

  it("pullFromDaemon reads GET /images/get into the store", async () => {
    const t2 = await tempStore();
    try {
      const classic = fixtures[1]!;
      const r = await pullFromDaemon(t2.store, classic.tag, { host: peer!.host });
      expect(r.images.map((i) => i.id)).toEqual([classic.id]);
      expect(r.images[0]!.tags).toEqual([norm(classic.tag)]);
    } finally {
      await t2.cleanup();
    }
  });
});

describe.skipIf(!peer)("berth save → docker load", () => {
  const cleanup: string[] = [];
  afterAll(async () => {
    if (cleanup.length) await peer!.docker(["rmi", "-f", ...cleanup]);
  });

  for (const format of ["docker+oci", "docker"] as const) {
    it(`${format}: multi-image archive with plain and gzip layers loads with the same IDs and tags`, async () => {
      const t = await tempStore();
      try {
        const a = await uniqueImage();
        const b = await uniqueImage({ gzip: true, layers: 3 });
        const suffix = randomBytes(4).toString("hex");
        const tagA = `berth-archive-test/plain:${suffix}`;
        const tagB = `berth-archive-test/gzip:${suffix}`;
        cleanup.push(tagA, tagB);
        await load(t.store, [await tarOf(legacyEntries([{ img: a, tags: [tagA] }, { img: b, tags: [tagB] }]))]);
        const out = join(work, `berth-${format}.tar`);
        await save(t.store, [tagA, tagB], out, { format });
        const r = await peer!.run(["load", "-i", out]);
        expect(r.stdout).toContain(`Loaded image: ${tagA}`);
        expect(r.stdout).toContain(`Loaded image: ${tagB}`);
        expect((await inspect(peer!, tagA)).Id).toBe(a.id);
        expect((await inspect(peer!, tagB)).Id).toBe(b.id);
        const layersB = (await inspect(peer!, tagB)) as unknown as { RootFS: { Layers: string[] } };
        expect(layersB.RootFS.Layers).toEqual(b.diffIDs);
      } finally {
        await t.cleanup();
      }
    });
  }

  it("the same layer twice in one chain: written once, listed twice, docker loads it", async () => {
    const t = await tempStore();
    try {
      const same = await layerTar({ "same.bin": randomBytes(10_000) });
      const wh = await layerTar({ ".wh.same.bin": "" });
      const img = imageOf([same, wh, same], { label: randomBytes(4).toString("hex") });
      const tag = `berth-archive-test/twice:${randomBytes(4).toString("hex")}`;
      cleanup.push(tag);
      await load(t.store, [await tarOf(legacyEntries([{ img, tags: [tag] }]))]);
      const out = join(work, "berth-twice.tar");
      await save(t.store, [tag], out);
      await peer!.run(["load", "-i", out]);
      const di = (await inspect(peer!, tag)) as unknown as { Id: string; RootFS: { Layers: string[] } };
      expect(di.Id).toBe(img.id);
      expect(di.RootFS.Layers).toEqual(img.diffIDs);
    } finally {
      await t.cleanup();
    }
  });

  it("uncompressed hybrid of a gzip-layer image loads too", async () => {
    const t = await tempStore();
    try {
      const a = await uniqueImage({ gzip: true });
      const tag = `berth-archive-test/unc:${randomBytes(4).toString("hex")}`;
      cleanup.push(tag);
      await load(t.store, [await tarOf(legacyEntries([{ img: a, tags: [tag] }]))]);
      const out = join(work, "berth-unc.tar");
      await save(t.store, [tag], out, { uncompressed: true });
      await peer!.run(["load", "-i", out]);
      expect((await inspect(peer!, tag)).Id).toBe(a.id);
    } finally {
      await t.cleanup();
    }
  });
});

const podman = await requirePeer("podman");
describe.skipIf(!podman)("berth save → podman load", () => {
  it("podman loads the default (hybrid) archive with the same image ID and tag", async () => {
    const t = await tempStore();
    const root = mkdtempSync(join(tmpdir(), "berth-podman-"));
    try {
      const a = await uniqueImage({ gzip: true });
      const tag = `berth-archive-test/podman:${randomBytes(4).toString("hex")}`;
      await load(t.store, [await tarOf(legacyEntries([{ img: a, tags: [tag] }]))]);
      const out = join(work, "berth-podman.tar");
      await save(t.store, [tag], out);
      const args = ["--root", join(root, "root"), "--runroot", join(root, "run"), "--storage-driver", "vfs"];
      execFileSync(podman!, [...args, "load", "-q", "-i", out], { stdio: "pipe" });
      const images = JSON.parse(execFileSync(podman!, [...args, "images", "--format", "json"]).toString()) as Array<{
        Id: string;
        Names?: string[];
      }>;
      const found = images.find((i) => `sha256:${i.Id}` === a.id || i.Id === a.id);
      expect(found).toBeDefined();
      expect(found!.Names?.some((n) => n.endsWith(tag))).toBe(true);
    } finally {
      await t.cleanup();
      try {
        execFileSync(podman!, ["--root", join(root, "root"), "--runroot", join(root, "run"), "--storage-driver", "vfs", "system", "reset", "-f"], { stdio: "ignore" });
      } catch {
        // best effort
      }
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!peer)("loadIntoDaemon", () => {
  const cleanup: string[] = [];
  afterAll(async () => {
    if (cleanup.length) await peer!.docker(["rmi", "-f", ...cleanup]);
  });

  async function storeWithBaseAndChild() {
    const t = await tempStore();
    const busybox = await busyboxImage(peer!);
    await pullFromDaemon(t.store, busybox.tag, { host: peer!.host });
    const base = await t.store.images.get(busybox.id);
    const baseCfg = JSON.parse(Buffer.from(base.configBytes).toString());
    const top = await layerTar({ "new.bin": randomBytes(300_000) });
    const layer = await t.store.layers.register([top], base.chainID);
    const cfg = {
      ...baseCfg,
      rootfs: { type: "layers", diff_ids: [...baseCfg.rootfs.diff_ids, layer.diffID] },
      history: [...(baseCfg.history ?? []), { created: "2001-09-09T01:46:40Z", created_by: "berth test layer" }],
    };
    const img = await t.store.images.create(Buffer.from(JSON.stringify(cfg)));
    const tag = `berth-archive-test/inc:${randomBytes(4).toString("hex")}`;
    await t.store.references.tag(tag, img.id);
    cleanup.push(tag);
    return { t, img, tag, topSize: top.length };
  }

  it("incremental: sends no more than the new layer plus metadata; the image inspects fine", async () => {
    const { t, img, tag, topSize } = await storeWithBaseAndChild();
    try {
      const r = await loadIntoDaemon(t.store, tag, { host: peer!.host, incremental: true });
      expect(r.fellBack).toBe(false);
      expect(r.layersSkipped).toBeGreaterThanOrEqual(1);
      expect(r.layersSent).toBe(1);
      expect(r.bytesSent).toBeLessThanOrEqual(topSize + 64 * 1024);
      expect(r.bytesSent).toBe(r.archiveSize);
      const di = await inspect(peer!, tag);
      expect(di.Id).toBe(img.id);
    } finally {
      await t.cleanup();
    }
  });

  it("incremental falls back to the full archive when the daemon refuses (it lacks a layer it was thought to have)", async () => {
    const { t, img, tag } = await storeWithBaseAndChild();
    try {
      // The daemon's image list changes between our look and the load (another
      // client deleted the layer): modelled by claiming the new top layer too.
      const client = new DockerClient({ host: peer!.host });
      const real = client.layerChains.bind(client);
      client.layerChains = async () => new Set([...(await real()), img.chainID!]);
      const r = await loadIntoDaemon(t.store, tag, { client, incremental: true });
      expect(r.fellBack).toBe(true);
      expect(r.bytesSent).toBeGreaterThan(r.archiveSize);
      expect((await inspect(peer!, tag)).Id).toBe(img.id);
    } finally {
      await t.cleanup();
    }
  });

  it("zstd layers: loadIntoDaemon sends them uncompressed (dockerd 20.10 cannot apply zstd)", async () => {
    const t = await tempStore();
    try {
      const a = await uniqueImage({ zstd: true });
      const tag = `berth-archive-test/zstd:${randomBytes(4).toString("hex")}`;
      cleanup.push(tag);
      const lr = await load(t.store, [await tarOf(legacyEntries([{ img: a, tags: [tag] }]))]);
      expect(lr.images[0]!.layers.map((l) => l.blob.compression)).toEqual(["zstd", "zstd"]);
      const r = await loadIntoDaemon(t.store, tag, { host: peer!.host });
      expect(r.layersSent).toBe(2);
      expect((await inspect(peer!, tag)).Id).toBe(a.id);
    } finally {
      await t.cleanup();
    }
  });

  it("full (non-incremental) load sends every layer", async () => {
    const { t, img, tag } = await storeWithBaseAndChild();
    try {
      const r = await loadIntoDaemon(t.store, tag, { host: peer!.host });
      expect(r.layersSkipped).toBe(0);
      expect(r.bytesSent).toBe(r.archiveSize);
      expect((await inspect(peer!, tag)).Id).toBe(img.id);
    } finally {
      await t.cleanup();
    }
  });
});

describe.skipIf(!peer || !skopeo)("skopeo conversions load with the same image IDs", () => {
  let src: string;
  let dockerId: string;
  let diffs: string[];
  const tag = "berth-fixture/classic:1";
  beforeAll(async () => {
    const classic = await classicImage(peer!);
    dockerId = classic.id;
    diffs = ((await inspect(peer!, classic.tag)) as unknown as { RootFS: { Layers: string[] } }).RootFS.Layers;
    src = join(work, "skopeo-src.tar");
    await dockerSave(peer!, classic.tag, src);
  });
  const sk = (...args: string[]) => execFileSync(skopeo!, ["--insecure-policy", ...args], { stdio: "pipe" });

  async function loadFile(file: string) {
    const t = await tempStore();
    try {
      return await load(t.store, file);
    } finally {
      await t.cleanup();
    }
  }

  it("docker-archive: keeps the config (same ID as docker), plain and compressed", async () => {
    for (const extra of [[], ["--dest-compress"]]) {
      const out = join(work, `sk-da-${extra.length}.tar`);
      rmSync(out, { force: true });
      sk("copy", ...extra, `docker-archive:${src}:${tag}`, `docker-archive:${out}:${tag}`);
      const r = await loadFile(out);
      expect(r.images[0]!.id).toBe(dockerId);
      expect(r.images[0]!.tags).toEqual([norm(tag)]);
      expect(r.images[0]!.layers.map((l) => l.diffID)).toEqual(diffs);
    }
  });

  it("oci-archive: (gzip, uncompressed-labelled-gzip, zstd) loads; ID = the config skopeo wrote", async () => {
    for (const extra of [[], ["--dest-oci-accept-uncompressed-layers"], ["--dest-compress-format", "zstd"]]) {
      const out = join(work, `sk-oa-${extra.join("")}.tar`);
      rmSync(out, { force: true });
      sk("copy", ...extra, `docker-archive:${src}:${tag}`, `oci-archive:${out}:${tag}`);
      const cfg = sk("inspect", "--config", "--raw", `oci-archive:${out}`);
      const r = await loadFile(out);
      expect(r.format).toBe("oci");
      expect(r.images[0]!.id).toBe(sha256(cfg));
      expect(r.images[0]!.tags).toEqual([norm(tag)]);
      expect(r.images[0]!.layers.map((l) => l.diffID)).toEqual(diffs);
    }
  });

  it("oci: directory, tarred with ./ names", async () => {
    const dir = join(work, "sk-oci-dir");
    rmSync(dir, { recursive: true, force: true });
    sk("copy", `docker-archive:${src}:${tag}`, `oci:${dir}:${tag}`);
    const cfg = sk("inspect", "--config", "--raw", `oci:${dir}`);
    const tarFile = join(work, "sk-oci-dir.tar");
    execFileSync("tar", ["-C", dir, "-cf", tarFile, "."]);
    const r = await loadFile(tarFile);
    expect(r.images[0]!.id).toBe(sha256(cfg));
    expect(r.images[0]!.layers.map((l) => l.diffID)).toEqual(diffs);
  });
});
