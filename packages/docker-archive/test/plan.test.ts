/**
 * `planArchive` on archives held in memory: no store, no tar, just the
 * entries a read would have produced.
 */
import { sha256 } from "@berth/digest";
import { describe, expect, it } from "vitest";
import { ArchiveEntries } from "../src/entries.js";
import { type ArchivePlan, INDEX_WALK_LIMITS, planArchive } from "../src/plan.js";
import { archiveOf, enc, imageOf, indexBomb, layerTar, legacyEntries, ociEntries, type TestImage } from "./helpers.js";

const json = (v: unknown) => JSON.stringify(v);
const replace = <T extends { name: string }>(list: T[], name: string, body: string) => list.map((e) => (e.name === name ? { ...e, body } : e));
const tags = (p: ArchivePlan) => Object.fromEntries([...p.tags].map(([t, id]) => [t, id.slice(7, 15)]));

async function image(label: string, layers = 2): Promise<TestImage> {
  const tars = [];
  for (let i = 0; i < layers; i++) tars.push(await layerTar({ [`f${i}`]: `${label} ${i}\n` }));
  return imageOf(tars, { label });
}

describe("planArchive", () => {
  it("legacy manifest.json (with repositories): images, layers in order, normalized tags, parent", async () => {
    const a = await image("a");
    const b = await image("b", 1);
    const files = legacyEntries([
      { img: a, tags: ["example/app:1", "busybox"] },
      { img: b, tags: null },
    ]);
    const m = JSON.parse(files.at(-1)!.body as string);
    m[1].Parent = a.id;
    const withRepos = [...replace(files, "manifest.json", json(m)), { name: "repositories", body: json({ busybox: { latest: a.id.slice(7) } }) }];
    const plan = await planArchive(archiveOf(withRepos));
    expect(plan.format).toBe("docker");
    expect(plan.images.map((p) => p.id)).toEqual([a.id, b.id]);
    const [pa, pb] = plan.images;
    expect(pa!.diffIDs).toEqual(a.diffIDs);
    expect(pa!.layers.map((l) => (l.kind === "file" ? l.digest : l.name))).toEqual(a.layers.map((l) => sha256(l)));
    expect([...pa!.tags]).toEqual(["docker.io/example/app:1", "docker.io/library/busybox:latest"]);
    expect(pb!.tags.size).toBe(0);
    expect(pb!.parent).toBe(a.id);
    expect(pa!.source).toBe("manifest.json[0]");
    expect(Buffer.from(pa!.configBytes).equals(Buffer.from(a.config))).toBe(true);
    expect(plan.layerChecks.map((c) => c.diffID)).toEqual([...a.diffIDs, ...b.diffIDs]);
    expect(plan.layerChecks[1]!.what).toBe(`layer 1 (${sha256(a.layers[1]!).slice(7)}/layer.tar) of image ${a.id}`);
    expect(tags(plan)).toEqual({ "docker.io/example/app:1": a.id.slice(7, 15), "docker.io/library/busybox:latest": a.id.slice(7, 15) });
  });

  it("OCI index: a full ref name is a tag, a bare one needs a repository", async () => {
    const a = await image("a");
    const { entries, manifestDigest } = ociEntries(a, "example/oci:2");
    const plan = await planArchive(archiveOf(entries));
    expect(plan.format).toBe("oci");
    expect(plan.images).toHaveLength(1);
    expect(plan.images[0]!.archiveManifestDigest).toBe(manifestDigest);
    expect(plan.images[0]!.source).toBe(`manifest ${manifestDigest}`);
    expect([...plan.tags.keys()]).toEqual(["docker.io/example/oci:2"]);
    const bare = archiveOf(ociEntries(a, "latest").entries);
    const ignored = await planArchive(bare);
    expect(ignored.ignoredRefNames).toEqual(["latest"]);
    expect(ignored.tags.size).toBe(0);
    const named = await planArchive(bare, { repository: "example/bare" });
    expect([...named.tags.keys()]).toEqual(["docker.io/example/bare:latest"]);
  });

  it("both documents (Docker 25+ hybrid): one image, tags from both, each layer reference checked", async () => {
    const a = await image("a");
    const oci = ociEntries(a, "docker.io/library/app:oci").entries;
    // The legacy half names the OCI blobs through symlinks, as docker save does.
    const links: Record<string, string> = {};
    const layers = a.layers.map((l, i) => {
      links[`l${i}/layer.tar`] = `blobs/sha256/${sha256(l).slice(7)}`;
      return `l${i}/layer.tar`;
    });
    const manifest = json([{ Config: `blobs/sha256/${a.id.slice(7)}`, RepoTags: ["app:legacy"], Layers: layers }]);
    const plan = await planArchive(archiveOf([...oci, { name: "manifest.json", body: manifest }], links));
    expect(plan.format).toBe("docker+oci");
    expect(plan.images).toHaveLength(1);
    expect([...plan.images[0]!.tags].sort()).toEqual(["docker.io/library/app:legacy", "docker.io/library/app:oci"]);
    expect(plan.images[0]!.archiveManifestDigest).toMatch(/^sha256:/);
    expect(plan.layerChecks).toHaveLength(4);
    expect(new Set(plan.layerChecks.map((c) => c.layer)).size).toBe(2);
  });

  it("a multi-platform index tags the wanted platform's image; artifacts are skipped", async () => {
    const amd = await image("amd", 1);
    const arm = await image("arm", 1);
    const files: Array<{ name: string; body: string | Uint8Array }> = [];
    const blob = (b: Uint8Array | string) => {
      const bytes = enc(b);
      files.push({ name: `blobs/sha256/${sha256(bytes).slice(7)}`, body: bytes });
      return { digest: sha256(bytes), size: bytes.length };
    };
    const manifestOf = (img: TestImage, configType = "application/vnd.oci.image.config.v1+json") =>
      blob(json({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: configType, ...blob(img.config) },
        layers: img.layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...blob(l) })),
      }));
    const desc = (d: { digest: string; size: number }, platform: string) => {
      const [os, architecture] = platform.split("/");
      return { mediaType: "application/vnd.oci.image.manifest.v1+json", ...d, platform: { os, architecture } };
    };
    const artifact = manifestOf(amd, "application/vnd.example.sbom+json");
    const list = blob(json({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [desc(manifestOf(amd), "linux/amd64"), desc(manifestOf(arm), "linux/arm64"), desc(artifact, "unknown/unknown")],
    }));
    const index = { schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.index.v1+json", ...list, annotations: { "io.containerd.image.name": "multi:1" } }] };
    const docs = archiveOf([...files, { name: "index.json", body: json(index) }]);
    const onArm = await planArchive(docs, { platform: "linux/arm64" });
    expect(onArm.images.map((p) => p.platform)).toEqual(["linux/amd64", "linux/arm64"]);
    expect(tags(onArm)).toEqual({ "docker.io/library/multi:1": arm.id.slice(7, 15) });
    expect(onArm.skippedManifests).toEqual([artifact.digest]);
    const elsewhere = await planArchive(docs, { platform: "linux/riscv64" });
    expect(tags(elsewhere)).toEqual({ "docker.io/library/multi:1": amd.id.slice(7, 15) });
  });

  it("a tag given to two images → ERR_INVALID_MANIFEST; the same image twice is fine", async () => {
    const a = await image("a");
    const b = await image("b");
    const two = archiveOf(legacyEntries([{ img: a, tags: ["app:1"] }, { img: b, tags: ["app:1"] }]));
    await expect(planArchive(two)).rejects.toMatchObject({ code: "ERR_INVALID_MANIFEST", message: expect.stringMatching(/tag docker.io\/library\/app:1 is given to two images/) });
    const again = archiveOf(legacyEntries([{ img: a, tags: ["app:1"] }, { img: a, tags: ["app:1", "app:2"] }]));
    const plan = await planArchive(again);
    expect(plan.images).toHaveLength(1);
    expect([...plan.images[0]!.tags]).toEqual(["docker.io/library/app:1", "docker.io/library/app:2"]);
  });

  it("a config that is not an entry → ERR_NOT_IN_ARCHIVE (legacy and OCI)", async () => {
    const a = await image("a");
    const legacy = legacyEntries([{ img: a, tags: ["a:1"] }]).filter((e) => e.name !== `${a.id.slice(7)}.json`);
    await expect(planArchive(archiveOf(legacy))).rejects.toMatchObject({ code: "ERR_NOT_IN_ARCHIVE", message: expect.stringContaining("manifest.json[0] Config") });
    const oci = ociEntries(a, "a:1").entries.filter((e) => e.name !== `blobs/sha256/${a.id.slice(7)}`);
    await expect(planArchive(archiveOf(oci))).rejects.toMatchObject({ code: "ERR_NOT_IN_ARCHIVE", message: expect.stringContaining(" config)") });
  });

  it("layer count different from the config's DiffIDs → ERR_INVALID_MANIFEST", async () => {
    const a = await image("a");
    const files = legacyEntries([{ img: a, tags: ["a:1"] }]);
    const m = JSON.parse(files.at(-1)!.body as string);
    m[0].Layers.pop();
    const err = planArchive(archiveOf(replace(files, "manifest.json", json(m))));
    await expect(err).rejects.toMatchObject({ code: "ERR_INVALID_MANIFEST", message: `manifest.json[0]: lists 1 layers but config ${a.id} has 2 DiffIDs` });
  });

  it("documents are validated with @berth/oci's validators: ERR_INVALID_MANIFEST with the validator's error as cause", async () => {
    const a = await image("a");
    const { entries } = ociEntries(a, "a:1");
    const index = JSON.parse(entries.find((e) => e.name === "index.json")!.body as string);
    delete index.schemaVersion;
    const badIndex = planArchive(archiveOf(replace(entries, "index.json", json(index))));
    await expect(badIndex).rejects.toMatchObject({ code: "ERR_INVALID_MANIFEST", message: "index.json: schemaVersion must be 2, got undefined", cause: { code: "ERR_INVALID_INDEX" } });
    // A config without rootfs: refused while planning, not by the store.
    const cfg = JSON.parse(Buffer.from(a.config).toString());
    delete cfg.rootfs;
    const files = legacyEntries([{ img: a, tags: ["a:1"] }]);
    const badConfig = planArchive(archiveOf(replace(files, `${a.id.slice(7)}.json`, json(cfg))));
    await expect(badConfig).rejects.toMatchObject({ code: "ERR_INVALID_MANIFEST", cause: { code: "ERR_INVALID_CONFIG" } });
    const notArray = archiveOf(replace(files, "manifest.json", json({ Config: "x" })));
    await expect(planArchive(notArray)).rejects.toMatchObject({ code: "ERR_INVALID_MANIFEST", message: "manifest.json: must be a JSON array" });
  });

  it("a descriptor size that is not its blob's → ERR_SIZE_MISMATCH; neither document → ERR_UNKNOWN_ARCHIVE_FORMAT", async () => {
    const a = await image("a");
    const { entries } = ociEntries(a, "a:1");
    const index = JSON.parse(entries.find((e) => e.name === "index.json")!.body as string);
    index.manifests[0].size += 1;
    await expect(planArchive(archiveOf(replace(entries, "index.json", json(index))))).rejects.toMatchObject({ code: "ERR_SIZE_MISMATCH" });
    await expect(planArchive(archiveOf([{ name: "x", body: "y" }]))).rejects.toMatchObject({ code: "ERR_UNKNOWN_ARCHIVE_FORMAT" });
  });
});

describe("planArchive on fields of the wrong type", () => {
  it("a field of the wrong type is ERR_INVALID_MANIFEST naming it: manifest.json fields, ref names in index.json and nested indexes", async () => {
    const a = await image("a");
    const legacy = legacyEntries([{ img: a, tags: ["a:1"] }]);
    const m = JSON.parse(legacy.at(-1)!.body as string);
    for (const [field, value, message] of [
      ["Parent", 5, /manifest.json\[0\]: Parent must be a string/],
      ["RepoTags", [5], /manifest.json\[0\]: RepoTags must be an array of strings/],
      ["Layers", "x", /manifest.json\[0\]: Layers must be an array of strings/],
      ["Config", {}, /manifest.json\[0\]: Config must be a string/],
    ] as const) {
      const bad = archiveOf(replace(legacy, "manifest.json", json([{ ...m[0], [field]: value }])));
      await expect(planArchive(bad), field).rejects.toMatchObject({ code: "ERR_INVALID_MANIFEST", message: expect.stringMatching(message) });
    }
    const { entries, manifestDigest } = ociEntries(a);
    const manifest = entries.find((e) => e.name === `blobs/sha256/${manifestDigest.slice(7)}`)!;
    const desc = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: manifestDigest, size: enc(manifest.body).length };
    const numbered = { ...desc, annotations: { "org.opencontainers.image.ref.name": 5 } };
    const top = replace(entries, "index.json", json({ schemaVersion: 2, manifests: [numbered] }));
    await expect(planArchive(archiveOf(top))).rejects.toMatchObject({
      code: "ERR_INVALID_MANIFEST",
      message: expect.stringMatching(/^index.json: manifests\[0\].annotations\["org.opencontainers.image.ref.name"\] must be a string, got number/),
    });
    const nested = [...entries.filter((e) => e.name !== "index.json"), ...indexBomb(1, 1, [numbered])];
    await expect(planArchive(archiveOf(nested))).rejects.toMatchObject({ code: "ERR_INVALID_MANIFEST", message: expect.stringMatching(/annotations\["org.opencontainers.image.ref.name"\] must be a string, got number/) });
  });
});

describe("planArchive on hostile index trees", () => {
  /** The entries of `ociEntries(img)` with its manifest descriptor, for use as a bomb's leaf. */
  async function leafImage() {
    const img = await image("leaf", 1);
    const { entries, manifestDigest } = ociEntries(img);
    const manifest = entries.find((e) => e.name === `blobs/sha256/${manifestDigest.slice(7)}`)!;
    const leaf = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: manifestDigest, size: enc(manifest.body).length };
    return { img, blobs: entries.filter((e) => e.name !== "index.json"), leaf };
  }

  it("an index naming its child 1,000 times, 4 levels deep → ERR_INDEX_LIMIT, each index read once", async () => {
    const docs = archiveOf(indexBomb(4, 1000));
    let reads = 0;
    const read = docs.read.bind(docs);
    docs.read = (f) => {
      reads++;
      return read(f);
    };
    await expect(planArchive(docs)).rejects.toMatchObject({ code: "ERR_INDEX_LIMIT", message: expect.stringMatching(/names \d+ descriptors, more than the limit of 200000/) });
    // index.json and each of the 5 indexes, once
    expect(reads).toBe(6);
  });

  it("a child named many times within the limits is walked once and its image planned once, with the tag", async () => {
    const { img, blobs, leaf } = await leafImage();
    const plan = await planArchive(archiveOf([...blobs.filter((e) => e.name !== "oci-layout"), ...indexBomb(2, 300, [leaf])]));
    expect(plan.images.map((p) => p.id)).toEqual([img.id]);
    expect(plan.layerChecks).toHaveLength(1);
    expect(tags(plan)).toEqual({ "docker.io/library/bomb:1": img.id.slice(7, 15) });
  });

  it("depth, fan-out and tree size limits are typed errors naming the document", async () => {
    const { blobs, leaf } = await leafImage();
    // index.json, `levels` indexes and the innermost one: levels + 2 deep
    const deep = archiveOf([...blobs, ...indexBomb(INDEX_WALK_LIMITS.depth - 1, 1, [leaf])]);
    await expect(planArchive(deep)).rejects.toMatchObject({ code: "ERR_INDEX_LIMIT", message: expect.stringMatching(/^index sha256:[0-9a-f]{64}: indexes nested 9 deep/) });
    expect((await planArchive(archiveOf([...blobs, ...indexBomb(INDEX_WALK_LIMITS.depth - 2, 1, [leaf])]))).images).toHaveLength(1);
    // (an index that wide is over the default JSON limit too)
    const wide = new ArchiveEntries(archiveOf([...blobs, ...indexBomb(1, INDEX_WALK_LIMITS.fanOut + 1, [leaf])]).entries, { maxJson: 64 << 20 });
    await expect(planArchive(wide)).rejects.toMatchObject({ code: "ERR_INDEX_LIMIT", message: expect.stringMatching(/lists 65537 descriptors/) });
  });

  it("an AbortSignal stops a long walk with its reason", async () => {
    const { blobs, leaf } = await leafImage();
    const docs = archiveOf([...blobs, ...indexBomb(1, 2000, [leaf])]);
    const stop = new AbortController();
    // the first read holds the thread (as CPU-bound work would) while the signal fires
    const read = docs.read.bind(docs);
    docs.read = async (f) => {
      if (!stop.signal.aborted) {
        stop.abort(new Error("stopped"));
        const until = performance.now() + 50;
        while (performance.now() < until);
      }
      return read(f);
    };
    await expect(planArchive(docs, { signal: stop.signal })).rejects.toThrow("stopped");
  });
});

