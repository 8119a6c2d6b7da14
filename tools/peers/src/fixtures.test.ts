import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { execOk } from "./exec.js";
import {
  BUSYBOX_TAG,
  busyboxImage,
  classicImage,
  type DockerPeer,
  dockerd,
  dockerLoad,
  dockerSave,
  filesImage,
  history,
  inspect,
  randomImage,
  repeatedLayerImage,
  sharedBaseImages,
} from "./index.js";

const peer = await dockerd();
const work = await mkdtemp(join(tmpdir(), "berth-fixtures-test-"));
afterAll(() => rm(work, { recursive: true, force: true }));

interface SavedManifest {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/** docker save → extract → manifest + `tar -tv` listing of each layer (in RootFS order). */
async function saveAndList(p: DockerPeer, ref: string, name: string): Promise<{ manifest: SavedManifest; layers: string[][] }> {
  const file = join(work, `${name}.tar`);
  const dir = join(work, name);
  await dockerSave(p, ref, file);
  await execOk("mkdir", ["-p", dir]);
  await execOk("tar", ["-xf", file, "-C", dir]);
  const manifest = (JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as SavedManifest[])[0]!;
  const layers: string[][] = [];
  for (const l of manifest.Layers) {
    const r = await execOk("tar", ["--quoting-style=literal", "-tvf", join(dir, l)]);
    layers.push(r.stdout.split("\n").filter(Boolean));
  }
  return { manifest, layers };
}

/** The listing line for `path` (without leading slash) in a layer, or undefined. */
function entry(layer: string[], path: string): string | undefined {
  const rel = path.replace(/^\//, "");
  return layer.find((l) => {
    const m = / \d\d:\d\d (.*)$/.exec(l);
    if (!m) return false;
    const name = m[1]!.replace(/ (->|link to) .*$/, "").replace(/\/$/, "");
    return name === rel || name === `./${rel}`;
  });
}

describe.skipIf(!peer)("fixtures against the real dockerd", () => {
  const p = peer!;

  it("busyboxImage is the shared base", async () => {
    const img = await busyboxImage(p);
    expect(img.tag).toBe(BUSYBOX_TAG);
    const info = await inspect(p, img.tag);
    expect(info.Id).toBe(img.id);
    expect(info.RootFS.Layers).toHaveLength(1);
  });

  it("classicImage has ENV/LABEL/WORKDIR/COPY/RUN steps as the classic builder writes them", async () => {
    const img = await classicImage(p);
    const info = await inspect(p, img.tag);
    expect(info.Id).toBe(img.id);
    expect(info.RepoTags).toContain("berth-fixture/classic:1");
    expect(info.Config!.Env).toEqual(expect.arrayContaining(["A=1", "B=two words"]));
    expect(info.Config!.Labels).toMatchObject({ "com.example.flag": "yes" });
    expect(info.Config!.WorkingDir).toBe("/app");
    expect(info.Config!.Entrypoint).toEqual(["/bin/sh", "-c"]);
    expect(info.RootFS.Layers).toHaveLength(5);
    const h = await history(p, img.tag);
    const by = h.map((e) => e.CreatedBy);
    expect(by).toContain('/bin/sh -c #(nop)  ENV A=1 B=two words');
    expect(by.some((c) => c.startsWith("/bin/sh -c #(nop) WORKDIR /app"))).toBe(true);
    expect(by.some((c) => /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \.\/ $/.test(c))).toBe(true);
    expect(by.some((c) => c.startsWith("|1 VER=1 /bin/sh -c echo"))).toBe(true);
    expect(by).toContain("|1 VER=1 /bin/sh -c true"); // after ARG, every RUN carries the args
    const emptyTrue = h.find((e) => e.CreatedBy === "|1 VER=1 /bin/sh -c true")!;
    expect(emptyTrue.sizeBytes).toBe(0);
    const run = await p.run(["run", "--rm", "--network", "none", img.tag]);
    expect(run.stdout).toBe("hello from the classic fixture\n");
    // Idempotent: the second call hits the classic cache.
    expect((await classicImage(p)).id).toBe(img.id);
  });

  it("filesImage has symlinks, hardlinks, whiteouts, long and unicode names and a large random file", async () => {
    const size = 3 * 1024 * 1024 + 17;
    const img = await filesImage(p, { largeFileSize: size, tag: "berth-fixture/files-test:1" });
    const c = img.contents;
    const { manifest, layers } = await saveAndList(p, img.tag, "files");
    expect(manifest.Layers).toHaveLength(5);
    const [, copy, links, deletes, large] = layers as [string[], string[], string[], string[], string[]];
    expect(entry(copy, c.longName)).toBeDefined();
    expect(c.longName.length).toBeGreaterThan(100);
    expect(entry(copy, c.longPath)).toBeDefined();
    expect(c.longPath.length).toBeGreaterThan(255);
    for (const u of c.unicodeNames) expect(entry(copy, u), u).toBeDefined();
    for (const [path, target] of Object.entries(c.symlinks)) {
      expect(entry(links, path), path).toMatch(new RegExp(`^l.* -> ${target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`));
    }
    // Hardlinks: one entry holds the data, the others link to it.
    const hl = c.hardlinks.map((h) => entry(links, h));
    expect(hl[0]).toMatch(/^-/);
    for (const l of hl.slice(1)) expect(l).toMatch(/^h.* link to data\/linked-a\.txt$/);
    expect(entry(links, "/data/fifo")).toMatch(/^p/);
    for (const d of c.deleted) {
      const dir = d.slice(0, d.lastIndexOf("/"));
      const base = d.slice(d.lastIndexOf("/") + 1);
      expect(entry(deletes, `${dir}/.wh.${base}`), d).toBeDefined();
    }
    expect(entry(large, c.largeFile.path)).toMatch(new RegExp(` ${size} `));
    const inImage = await p.run(["run", "--rm", "--network", "none", img.tag, "sh", "-c", "stat -c %s /data/large.bin; cat /data/link-rel; ls /bin/ls 2>&1 || true"]);
    expect(inImage.stdout).toMatch(new RegExp(`^${size}\nhello\n.*No such file`));
  });

  it("sharedBaseImages share the base's layers and differ on top", async () => {
    const { base, a, b } = await sharedBaseImages(p);
    const [ib, ia, ibb] = await Promise.all([inspect(p, base.id), inspect(p, a.id), inspect(p, b.id)]);
    const baseLayers = ib.RootFS.Layers!;
    expect(baseLayers).toHaveLength(2);
    expect(ia.RootFS.Layers!.slice(0, 2)).toEqual(baseLayers);
    expect(ibb.RootFS.Layers!.slice(0, 2)).toEqual(baseLayers);
    expect(ia.RootFS.Layers![2]).not.toBe(ibb.RootFS.Layers![2]);
    expect((await history(p, a.tag)).map((e) => e.ID)).toContain(base.id);
    // One save of both: each layer once.
    const file = join(work, "shared.tar");
    await dockerSave(p, [a.tag, b.tag], file);
    const list = (await execOk("tar", ["-tf", file])).stdout.split("\n").filter((l) => l.endsWith("layer.tar"));
    expect(list.length).toBe(4); // busybox, base RUN, a RUN, b RUN
  });

  it("repeatedLayerImage has one DiffID twice in its chain", async () => {
    const img = await repeatedLayerImage(p);
    const info = await inspect(p, img.tag);
    const layers = info.RootFS.Layers!;
    expect(layers).toHaveLength(4);
    expect(layers[img.repeated[0]]).toBe(layers[img.repeated[1]]);
    expect(new Set(layers).size).toBe(3);
  });

  it("randomImage builds layers of generated data; dockerSave/dockerLoad round-trip", async () => {
    const img = await randomImage(p, { layers: 2, layerSize: 256 * 1024, kind: "text" });
    const info = await inspect(p, img.tag);
    expect(info.RootFS.Layers).toHaveLength(3);
    const h = await history(p, img.tag);
    expect(h[0]!.sizeBytes).toBe(256 * 1024);
    const small = await randomImage(p, { layers: 1, layerSize: 40 * 1024, kind: "small-files" });
    expect((await history(p, small.tag))[0]!.sizeBytes).toBeGreaterThan(40 * 1024);
    const file = join(work, "random.tar");
    const { size } = await dockerSave(p, img.tag, file);
    expect(size).toBe((await stat(file)).size);
    expect(size).toBeGreaterThan(512 * 1024);
    const loaded = await dockerLoad(p, file);
    expect(loaded).toEqual([img.tag]);
  });
});
