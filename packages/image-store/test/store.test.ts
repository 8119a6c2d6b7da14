import { promises as fsp } from "node:fs";
import path from "node:path";
import { chainId, type Digest, sha256 } from "@berth/digest";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ANNOTATION_REF_NAME, type FsStore, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_MANIFEST, openStore, parseIndex } from "../src/index.js";
import { diffIdOf, gzip, makeConfig, makeTar, tempRoot } from "./helpers.js";

let root: string;
let cleanup: () => Promise<void>;
let store: FsStore;

beforeEach(async () => {
  ({ dir: root, cleanup } = await tempRoot());
  store = await openStore({ root });
});
afterEach(async () => {
  await store.close();
  await cleanup();
});

async function errorOf(p: Promise<unknown>): Promise<{ code: string; message: string; name: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string; name: string };
  }
  throw new Error("expected the promise to reject");
}

/** Snapshot of every file (path → size) under the root, minus locks. */
async function treeOf(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  async function walk(d: string) {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (rel.startsWith("locks") || rel.startsWith("leases")) continue;
      if (e.isDirectory()) await walk(p);
      else out[rel] = (await fsp.stat(p)).size;
    }
  }
  await walk(dir);
  return out;
}

const tarA = makeTar({ "a.txt": "layer a" });
const tarB = makeTar({ "b.txt": "layer b" });
const tarC = makeTar({ "c.txt": "layer c" });

async function twoLayerImage(s: FsStore = store, cmd = ["/bin/sh"]) {
  const a = await s.layers.register([gzip(tarA)]);
  const b = await s.layers.register([tarB], a.chainID);
  const config = makeConfig([diffIdOf(tarA), diffIdOf(tarB)], { cmd });
  return { a, b, config, image: await s.images.create(config) };
}

describe("images.create / get", () => {
  it("stores the config verbatim, ID = sha256, holds the layer, writes a stable OCI manifest", async () => {
    const { a, b, config, image } = await twoLayerImage();
    expect(image.id).toBe(sha256(config));
    expect(Buffer.from(image.configBytes).equals(Buffer.from(config))).toBe(true);
    expect(image.chainID).toBe(chainId([diffIdOf(tarA), diffIdOf(tarB)]));
    expect(image.chainID).toBe(b.chainID);
    expect(image.size).toBe("layer a".length + "layer b".length); // the files' bytes, as dockerd counts
    expect(image.config.rootfs.diff_ids).toEqual([diffIdOf(tarA), diffIdOf(tarB)]);
    expect(await store.layers.holders(b.chainID)).toEqual([`image:${image.id}`]);
    expect(await store.content.has(image.id)).toBe(true);

    const m = await store.images.manifest(image.id);
    expect(m.digest).toBe(image.manifestDigest);
    expect(sha256(m.bytes)).toBe(image.manifestDigest);
    expect(m.manifest).toEqual({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: image.id, size: config.length },
      layers: [
        { mediaType: a.blob.mediaType, digest: a.blob.digest, size: a.blob.size },
        { mediaType: b.blob.mediaType, digest: b.blob.digest, size: b.blob.size },
      ],
    });
    expect(a.blob.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");

    // Creating it again returns the same image; the manifest digest is stable.
    const again = await store.images.create(config);
    expect(again.id).toBe(image.id);
    expect(again.manifestDigest).toBe(image.manifestDigest);
    expect(await store.images.len()).toBe(1);
  });

  it("creates an image without layers", async () => {
    const config = makeConfig([], { history: [{ created_by: "nothing", empty_layer: true }] });
    const image = await store.images.create(config);
    expect(image.chainID).toBeNull();
    expect(image.size).toBe(0);
    expect((await store.images.manifest(image.id)).manifest.layers).toEqual([]);
  });

  it("accepts history with empty layers", async () => {
    await store.layers.register([tarA]);
    const config = makeConfig([diffIdOf(tarA)], {
      history: [{ created_by: "ADD" }, { created_by: "ENV A=1", empty_layer: true }, { created_by: "RUN true", empty_layer: true }],
    });
    expect((await store.images.create(config)).id).toBe(sha256(config));
  });

  it("refuses bad input with typed errors and leaves the store unchanged", async () => {
    await store.layers.register([tarA]);
    const before = await treeOf(root);
    const cases: Array<[() => Promise<unknown>, string]> = [
      // more non-empty history entries than layers (moby's rule)
      [() => store.images.create(makeConfig([diffIdOf(tarA)], { history: [{ created_by: "a" }, { created_by: "b" }] })), "ERR_INVALID_CONFIG"],
      // rootfs not in the layer store
      [() => store.images.create(makeConfig([diffIdOf(tarB)])), "ERR_LAYER_NOT_FOUND"],
      [() => store.images.create(makeConfig([diffIdOf(tarA), diffIdOf(tarB)])), "ERR_LAYER_NOT_FOUND"],
      // invalid JSON and invalid configs
      [() => store.images.create(new TextEncoder().encode("{not json")), "ERR_INVALID_JSON"],
      [() => store.images.create(new TextEncoder().encode("[]")), "ERR_INVALID_JSON"],
      [() => store.images.create(new TextEncoder().encode('{"os":"linux"}')), "ERR_INVALID_CONFIG"],
      [() => store.images.create(new TextEncoder().encode('{"rootfs":{"type":"layers","diff_ids":["../../etc/passwd"]}}')), "ERR_INVALID_CONFIG"],
      // path-like and malformed digests at every API
      [() => store.images.get("../../etc/passwd"), "ERR_DIGEST_FORMAT"],
      [() => store.images.get("sha256:../../../etc/passwd"), "ERR_DIGEST_FORMAT"],
      [() => store.images.get(`sha256:${"A".repeat(64)}`), "ERR_DIGEST_FORMAT"],
      [() => store.images.get("sha256:abc"), "ERR_DIGEST_LENGTH"],
      [() => store.images.get(`md5:${"a".repeat(32)}`), "ERR_DIGEST_UNSUPPORTED"],
      [() => store.images.delete("/etc/passwd"), "ERR_DIGEST_FORMAT"],
      [() => store.images.setParent(`sha256:${"a".repeat(64)}`, "../x"), "ERR_DIGEST_FORMAT"],
      [() => store.images.getParent("x/../../y"), "ERR_DIGEST_FORMAT"],
      [() => store.images.children("..\\x"), "ERR_DIGEST_FORMAT"],
      [() => store.images.setLastUpdated("sha256:", new Date()), "ERR_DIGEST_FORMAT"],
      [() => store.images.setBuiltLocally(""), "ERR_DIGEST_FORMAT"],
      [() => store.images.manifest("sha256:zz"), "ERR_DIGEST_LENGTH"],
      [() => store.images.search("../ab"), "ERR_DIGEST_FORMAT"],
      [() => store.images.search(""), "ERR_DIGEST_FORMAT"],
      [() => store.references.tag("x:1", "../../etc"), "ERR_DIGEST_FORMAT"],
      [() => store.references.tag("../etc:1", `sha256:${"a".repeat(64)}`), "ERR_INVALID_REFERENCE"],
      [() => store.references.referencesOf("sha256:../x"), "ERR_DIGEST_FORMAT"],
      [() => store.references.resolve("../../etc/passwd"), "ERR_INVALID_REFERENCE"],
      // unknown images
      [() => store.images.get(`sha256:${"a".repeat(64)}`), "ERR_IMAGE_NOT_FOUND"],
      [() => store.images.delete(`sha256:${"a".repeat(64)}`), "ERR_IMAGE_NOT_FOUND"],
      [() => store.references.tag("x:1", `sha256:${"a".repeat(64)}`), "ERR_IMAGE_NOT_FOUND"],
      [() => store.references.untag("x:1"), "ERR_REFERENCE_NOT_FOUND"],
      [() => store.references.resolve("nothing:here"), "ERR_IMAGE_NOT_FOUND"],
    ];
    for (const [p, code] of cases) {
      const err = await errorOf(p());
      expect(err.code, err.message).toBe(code);
    }
    expect(await treeOf(root)).toEqual(before);
    expect(await store.images.len()).toBe(0);
  });

  it("createMany: bulk create in order; one bad config leaves the store unchanged", async () => {
    await store.layers.register([tarA]);
    const good = Array.from({ length: 12 }, (_, i) => makeConfig([diffIdOf(tarA)], { cmd: [`m${i}`] }));
    const before = await treeOf(root);
    const bad = [...good.slice(0, 5), makeConfig([diffIdOf(tarB)]), ...good.slice(5)];
    expect((await errorOf(store.images.createMany(bad))).code).toBe("ERR_LAYER_NOT_FOUND");
    expect(await treeOf(root)).toEqual(before);
    const ids = await store.images.createMany([...good, good[0]!]);
    expect(ids).toEqual([...good, good[0]!].map((c) => sha256(c)));
    expect(await store.images.len()).toBe(12);
    for (const id of ids) expect((await store.images.get(id)).id).toBe(id);
    expect((await store.fsck()).problems).toEqual([]);
  });

  it("names the problem in the error message", async () => {
    const err = await errorOf(store.images.create(makeConfig([diffIdOf(tarA)], { history: [{}, {}] })));
    expect(err.code).toBe("ERR_INVALID_CONFIG");
    expect(err.message).toMatch(/too many non-empty layers in History section \(2 .* 1 diff_ids\)/);
    const err2 = await errorOf(store.images.create(makeConfig([diffIdOf(tarB)])));
    expect(err2.code).toBe("ERR_LAYER_NOT_FOUND");
    expect(err2.message).toContain(chainId([diffIdOf(tarB)])!);
    const err3 = await errorOf(store.images.get("../../etc/passwd"));
    expect(err3.code).toBe("ERR_DIGEST_FORMAT");
    expect(err3.message).toContain("../../etc/passwd");
  });
});

describe("search, parents, metadata", () => {
  it("finds images by unique prefix", async () => {
    await store.layers.register([tarA]);
    const ids: Digest[] = [];
    for (let i = 0; i < 40; i++) ids.push((await store.images.create(makeConfig([diffIdOf(tarA)], { cmd: [`c${i}`] }))).id);
    for (const id of ids) {
      expect(await store.images.search(id)).toBe(id);
      expect(await store.images.search(id.slice(7, 19))).toBe(id);
      expect(await store.images.search(id.slice(0, 19))).toBe(id);
    }
    // 40 IDs: some 1-hex prefix is shared.
    const first = ids.map((id) => id[7]);
    const shared = first.find((c, i) => first.indexOf(c) !== i)!;
    expect((await errorOf(store.images.search(shared))).code).toBe("ERR_AMBIGUOUS_PREFIX");
    const unused = "0123456789abcdef".split("").find((c) => !first.includes(c));
    if (unused) expect((await errorOf(store.images.search(unused))).code).toBe("ERR_IMAGE_NOT_FOUND");
  });

  it("tracks parents, children and heads; refuses missing parents and cycles", async () => {
    await store.layers.register([tarA]);
    const mk = async (n: string) => (await store.images.create(makeConfig([diffIdOf(tarA)], { cmd: [n] }))).id;
    const [p, c1, c2, g] = [await mk("p"), await mk("c1"), await mk("c2"), await mk("g")];
    await store.images.setParent(c1, p);
    await store.images.setParent(c2, p);
    await store.images.setParent(g, c1);
    expect(await store.images.getParent(c1)).toBe(p);
    expect(await store.images.getParent(p)).toBeUndefined();
    expect(await store.images.children(p)).toEqual([c1, c2].sort());
    expect(await store.images.heads()).toEqual([c2, g].sort());
    expect((await store.images.get(g)).parent).toBe(c1);
    expect((await errorOf(store.images.setParent(p, g))).code).toBe("ERR_INVALID_PARENT");
    expect((await errorOf(store.images.setParent(p, p))).code).toBe("ERR_INVALID_PARENT");
    expect((await errorOf(store.images.setParent(p, `sha256:${"f".repeat(64)}`))).code).toBe("ERR_IMAGE_NOT_FOUND");
    // Deleting a parent drops its children's links (moby).
    await store.images.delete(c1);
    expect(await store.images.getParent(g)).toBeUndefined();
    expect(await store.images.children(p)).toEqual([c2]);
    await store.images.setParent(c2, null);
    expect(await store.images.heads()).toEqual([p, c2, g].sort());
  });

  it("keeps lastUpdated and builtLocally, and restores everything on open", async () => {
    const { image } = await twoLayerImage();
    expect(await store.images.getLastUpdated(image.id)).toBeUndefined();
    expect(await store.images.isBuiltLocally(image.id)).toBe(false);
    const when = new Date("2024-05-06T07:08:09.123Z");
    await store.images.setLastUpdated(image.id, when);
    await store.images.setBuiltLocally(image.id);
    await store.layers.register([tarC]);
    const other = await store.images.create(makeConfig([diffIdOf(tarC)]));
    await store.images.setParent(other.id, image.id);
    await store.references.tag("busybox:1", image.id);
    await store.close();

    store = await openStore({ root });
    expect(await store.images.len()).toBe(2);
    expect((await store.images.getLastUpdated(image.id))?.toISOString()).toBe(when.toISOString());
    expect(await store.images.isBuiltLocally(image.id)).toBe(true);
    expect(await store.images.isBuiltLocally(other.id)).toBe(false);
    expect(await store.images.getParent(other.id)).toBe(image.id);
    expect(await store.references.resolve("busybox:1")).toBe(image.id);
    const got = await store.images.get(image.id);
    expect(got.manifestDigest).toBe(image.manifestDigest);
    expect([...(await store.images.map()).keys()].sort()).toEqual([image.id, other.id].sort());
  });

  it("sees what another open store (another process's view) writes", async () => {
    const other = await openStore({ root });
    try {
      const { image } = await twoLayerImage();
      expect(await other.images.len()).toBe(1);
      await other.references.tag("app:2", image.id);
      expect(await store.references.resolve("app:2")).toBe(image.id);
      // A compaction by one (new snapshot, journal replaced) is seen by the other.
      await other.fsck({ repair: true });
      await other.references.tag("app:3", image.id);
      expect(await store.references.resolve("app:3")).toBe(image.id);
      await store.references.tag("app:4", image.id);
      expect(await other.references.resolve("app:4")).toBe(image.id);
      await other.images.delete(image.id);
      expect(await store.images.len()).toBe(0);
      expect(await store.references.list()).toEqual([]);
    } finally {
      await other.close();
    }
  });
});

describe("readDocument", () => {
  it("reads a manifest or config by digest, verified; the cached copy is the caller's; an absent blob is ERR_BLOB_NOT_FOUND", async () => {
    const { image } = await twoLayerImage();
    const m = await store.images.manifest(image.id);
    expect(Buffer.from(await store.readDocument(m.digest)).equals(Buffer.from(m.bytes))).toBe(true);
    const first = await store.readDocument(image.id);
    first.fill(0);
    expect(sha256(await store.readDocument(image.id))).toBe(image.id);
    expect((await errorOf(store.readDocument(`sha256:${"e".repeat(64)}` as Digest))).code).toBe("ERR_BLOB_NOT_FOUND");
  });

  it("refuses a stored document that no longer hashes to its digest (ERR_DIGEST_MISMATCH)", async () => {
    const doc = new TextEncoder().encode('{"kind":"document"}');
    const { digest } = await store.content.put(doc);
    await fsp.chmod(path.join(root, "blobs", "sha256", digest.slice(7)), 0o644);
    await fsp.writeFile(path.join(root, "blobs", "sha256", digest.slice(7)), '{"kind":"damaged!"}');
    expect((await errorOf(store.readDocument(digest))).code).toBe("ERR_DIGEST_MISMATCH");
  });
});

describe("delete and gc", () => {
  it("releases the layer, untags, and gc frees bytes nothing else references", async () => {
    const { a, b, image } = await twoLayerImage();
    await store.layers.register([tarC], a.chainID);
    const shared = await store.images.create(makeConfig([diffIdOf(tarA), diffIdOf(tarC)]));
    await store.references.tag("one:1", image.id);
    await store.references.tag("one:2", image.id);

    const res = await store.images.delete(image.id);
    expect(res).toEqual({ deleted: [image.id], releasedLayers: [b.chainID], untagged: ["docker.io/library/one:1", "docker.io/library/one:2"] });
    expect(await store.layers.holders(b.chainID)).toEqual([]);
    expect(await store.references.list()).toEqual([]);
    expect((await errorOf(store.images.get(image.id))).code).toBe("ERR_IMAGE_NOT_FOUND");

    const gc = await store.gc();
    expect(gc.removedLayers).toEqual([b.chainID]);
    expect(gc.removedBlobs.sort()).toEqual([b.blob.digest, image.id, image.manifestDigest].sort());
    expect(gc.freedBytes).toBeGreaterThan(tarB.length);
    // The shared base layer and the other image survive.
    expect(await store.layers.has(a.chainID)).toBe(true);
    expect((await store.images.get(shared.id)).id).toBe(shared.id);
    expect((await store.images.manifest(shared.id)).digest).toBe(shared.manifestDigest);

    // prune: delete + gc in one call.
    const res2 = await store.images.delete(shared.id, { prune: true });
    expect(res2.gc?.removedLayers.length).toBe(2);
    expect(await store.layers.list()).toEqual([]);
    const left = await treeOf(path.join(root, "blobs"));
    expect(Object.keys(left)).toEqual([]);
  });

  it("pins keep blobs no image references from gc and fsck; removing the pin frees them", async () => {
    const kept = await store.content.put(new TextEncoder().encode("a manifest the registry keeps"));
    const loose = await store.content.put(new TextEncoder().encode("nobody keeps this"));
    await store.pins.write("registry.test", { blobs: [kept.digest], data: { any: "thing" } });
    expect(await store.pins.list("registry.")).toEqual(["registry.test"]);
    expect((await store.pins.read("registry.test"))?.data).toEqual({ any: "thing" });
    expect((await store.fsck()).problems.filter((p) => p.subject === kept.digest)).toEqual([]);
    const gc = await store.gc();
    expect(gc.removedBlobs).toEqual([loose.digest]);
    expect(await store.content.has(kept.digest)).toBe(true);
    // a new store over the root reads the pin from disk
    const again = await openStore({ root });
    try {
      expect((await again.gc()).removedBlobs).toEqual([]);
    } finally {
      await again.close();
    }
    await store.pins.remove("registry.test");
    expect((await store.gc()).removedBlobs).toEqual([kept.digest]);
    expect((await errorOf(store.pins.write("../x", { blobs: [] }))).code).toBe("ERR_INVALID_PIN");
  });

  it("fsck --repair keeps a blob committed under a lease and pinned while it hashed the store (the GC's order)", async () => {
    // enough bytes that hashing them (fsck's pass without the lock) outlasts the commit below
    const big: Digest[] = [];
    for (let i = 0; i < 8; i++) big.push((await store.content.put(new Uint8Array(8 << 20).fill(i))).digest);
    await store.pins.write("registry.big", { blobs: big });
    const bytes = new TextEncoder().encode("pushed while fsck ran");
    const fsck = store.fsck({ repair: true });
    await new Promise((r) => setImmediate(r));
    // what an upload does: commit under its lease, pin, release the lease
    const lease = await store.lease();
    await store.content.put(bytes, {}, { lease });
    await store.pins.write("registry.pushed", { blobs: [sha256(bytes)] });
    await lease.release();
    const report = await fsck;
    expect(report.problems.filter((p) => p.subject === sha256(bytes))).toEqual([]);
    expect(await store.content.has(sha256(bytes))).toBe(true);
  });

  it("store.layers.gc() (called directly) never deletes image configs or manifests", async () => {
    const { image } = await twoLayerImage();
    const gc = await store.layers.gc();
    expect(gc.removedBlobs).toEqual([]);
    expect((await store.images.get(image.id)).id).toBe(image.id);
  });

  it("store.layers passes calls on (detached too), the two ingest phases included", async () => {
    const { image } = await twoLayerImage();
    const { get, list } = store.layers;
    expect((await get(image.chainID!)).chainID).toBe(image.chainID);
    expect((await list()).length).toBe(2);
    expect(store.layers.content).toBe(store.content);
    const { ingestLayer, recordLayer } = store.layers;
    const lease = await store.lease();
    try {
      const facts = await ingestLayer([makeTar({ "two-phase": "1" })], { lease });
      expect((await recordLayer(facts, null, { lease })).diffID).toBe(facts.diffID);
    } finally {
      await lease.release();
    }
  });
});

describe("references", () => {
  it("normalises, conflicts without force, moves with force, resolves like Docker", async () => {
    const { image } = await twoLayerImage();
    const { image: other } = await twoLayerImage(store, ["other"]);
    expect(await store.references.tag("busybox", image.id)).toEqual({ ref: "docker.io/library/busybox:latest" });
    expect(await store.references.tag("busybox:latest", image.id)).toEqual({ ref: "docker.io/library/busybox:latest" });
    await store.references.tag("localhost:5000/team/app:v1", image.id);
    const conflict = await errorOf(store.references.tag("busybox", other.id));
    expect(conflict.code).toBe("ERR_TAG_CONFLICT");
    expect(conflict.name).toBe("AlreadyExistsError");
    expect(conflict.message).toContain("busybox:latest");
    expect(await store.references.tag("docker.io/library/busybox", other.id, { force: true })).toEqual({
      ref: "docker.io/library/busybox:latest",
      previous: image.id,
    });
    expect(await store.references.resolve("busybox")).toBe(other.id);
    expect(await store.references.resolve("busybox:latest")).toBe(other.id);
    expect(await store.references.resolve("localhost:5000/team/app:v1")).toBe(image.id);
    expect(await store.references.resolve(image.id)).toBe(image.id);
    expect(await store.references.resolve(image.id.slice(7))).toBe(image.id);
    expect(await store.references.resolve(image.id.slice(7, 19))).toBe(image.id);
    expect(await store.references.resolve(image.id.slice(0, 19))).toBe(image.id);
    // name@manifest-digest of an image carrying that name.
    expect(await store.references.resolve(`localhost:5000/team/app@${image.manifestDigest}`)).toBe(image.id);
    expect((await errorOf(store.references.resolve(`other/name@${image.manifestDigest}`))).code).toBe("ERR_IMAGE_NOT_FOUND");
    // Digest references are stored too, and never move.
    await store.references.tag(`busybox@${other.manifestDigest}`, other.id);
    expect(await store.references.resolve(`busybox@${other.manifestDigest}`)).toBe(other.id);
    expect((await errorOf(store.references.tag(`busybox@${other.manifestDigest}`, image.id, { force: true }))).code).toBe(
      "ERR_TAG_CONFLICT",
    );
    expect((await errorOf(store.references.tag(`busybox:1@${other.manifestDigest}`, image.id))).code).toBe("ERR_INVALID_REFERENCE");
    expect(await store.references.referencesOf(other.id)).toEqual([
      "docker.io/library/busybox:latest",
      `docker.io/library/busybox@${other.manifestDigest}`,
    ]);
    expect(await store.references.list()).toEqual([
      { ref: "docker.io/library/busybox:latest", id: other.id },
      { ref: `docker.io/library/busybox@${other.manifestDigest}`, id: other.id },
      { ref: "localhost:5000/team/app:v1", id: image.id },
    ]);
    expect(await store.references.untag("busybox")).toBe(other.id);
    expect((await errorOf(store.references.resolve("busybox"))).code).toBe("ERR_IMAGE_NOT_FOUND");
    expect((await errorOf(store.references.resolve("UPPER"))).code).toBe("ERR_INVALID_REFERENCE");
  });

  it("tagMany: many tags as one write, each step against the ones before it, all or nothing", async () => {
    const { image } = await twoLayerImage();
    const { image: other } = await twoLayerImage(store, ["other"]);
    await store.references.tag("keep:1", image.id);
    const journal = path.join(root, "images", "journal.log");
    const before = (await fsp.readFile(journal)).length;
    expect(
      await store.references.tagMany([
        { ref: "a:1", id: image.id },
        { ref: "a:1", id: other.id, force: true }, // moves the tag the step before set
        { ref: "b:1", id: other.id },
        { ref: "keep:1", id: image.id }, // already so: nothing to write
      ]),
    ).toEqual([
      { ref: "docker.io/library/a:1" },
      { ref: "docker.io/library/a:1", previous: image.id },
      { ref: "docker.io/library/b:1" },
      { ref: "docker.io/library/keep:1" },
    ]);
    expect(await store.references.resolve("a:1")).toBe(other.id);
    expect(await store.references.resolve("b:1")).toBe(other.id);
    expect((await fsp.readFile(journal)).length).toBeGreaterThan(before);
    // a conflict anywhere refuses every step
    const size = (await fsp.readFile(journal)).length;
    expect((await errorOf(store.references.tagMany([{ ref: "c:1", id: image.id }, { ref: "b:1", id: image.id }]))).code).toBe("ERR_TAG_CONFLICT");
    expect((await errorOf(store.references.resolve("c:1"))).code).toBe("ERR_IMAGE_NOT_FOUND");
    expect((await fsp.readFile(journal)).length).toBe(size);
  });

  it("mirrors tags into index.json (OCI layout) and keeps other tools' entries", async () => {
    const { image } = await twoLayerImage();
    expect(JSON.parse(await fsp.readFile(path.join(root, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
    const readIdx = async () => parseIndex(await fsp.readFile(path.join(root, "index.json")), "index.json");
    expect((await readIdx()).manifests).toEqual([]); // untagged images are not listed
    await store.references.tag("berth-test/busybox:1", image.id);
    await store.references.tag("a__b:1", image.id); // valid Docker name, not a valid OCI ref name: not listed
    let idx = await readIdx();
    expect(idx.manifests).toEqual([
      {
        mediaType: MEDIA_TYPE_OCI_MANIFEST,
        digest: image.manifestDigest,
        size: image.manifestSize,
        annotations: {
          "io.containerd.image.name": "docker.io/berth-test/busybox:1",
          "io.berth.image.id": image.id,
          [ANNOTATION_REF_NAME]: "docker.io/berth-test/busybox:1",
        },
        platform: { architecture: "amd64", os: "linux" },
      },
    ]);
    // Another tool adds an entry (as `skopeo copy … oci:<root>:foreign` would), with its own blobs.
    const foreignConfig = new TextEncoder().encode('{"rootfs":{"type":"layers","diff_ids":[]},"os":"linux","architecture":"amd64"}');
    const fc = await store.content.put(foreignConfig);
    const fm = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: fc.digest, size: fc.size }, layers: [] }),
    );
    const fmd = await store.content.put(fm);
    const foreignEntry = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: fmd.digest, size: fmd.size, annotations: { [ANNOTATION_REF_NAME]: "foreign" } };
    idx.manifests.push(foreignEntry);
    await fsp.writeFile(path.join(root, "index.json"), JSON.stringify(idx));
    await store.references.untag("berth-test/busybox:1");
    idx = await readIdx();
    expect(idx.manifests).toEqual([foreignEntry]);
    // GC keeps the foreign manifest and its config.
    await store.images.delete(image.id);
    const gc = await store.gc();
    expect(gc.removedBlobs).not.toContain(fmd.digest);
    expect(gc.removedBlobs).not.toContain(fc.digest);
    expect(await store.content.has(fc.digest)).toBe(true);
  });
});

describe("journal", () => {
  it("compacts and reopens to the same state", async () => {
    await store.layers.register([tarA]);
    const ids: Digest[] = [];
    for (let i = 0; i < 30; i++) ids.push((await store.images.create(makeConfig([diffIdOf(tarA)], { cmd: [`${i}`] }))).id);
    for (let round = 0; round < 30; round++) {
      const id = ids[round % ids.length]!;
      await store.images.setLastUpdated(id, new Date(1_700_000_000_000 + round));
      await store.references.tag(`app:${round % 5}`, id, { force: true });
    }
    // 30 creates + 140 updates < 2000: force a compaction through fsck repair path instead.
    const before = {
      refs: await store.references.list(),
      lu: await Promise.all(ids.map((id) => store.images.getLastUpdated(id))),
    };
    await store.fsck({ repair: true });
    await store.close();
    const journal = await fsp.readFile(path.join(root, "images", "journal.log"), "utf8");
    store = await openStore({ root });
    expect(await store.references.list()).toEqual(before.refs);
    expect(await Promise.all(ids.map((id) => store.images.getLastUpdated(id)))).toEqual(before.lu);
    expect(journal.split("\n").length).toBeGreaterThan(1);
  });

  it("ignores a torn tail left by a killed writer, and the next writer truncates it", async () => {
    const { image } = await twoLayerImage();
    await store.close();
    const jp = path.join(root, "images", "journal.log");
    await fsp.appendFile(jp, '1234abcd ["t","docker.io/library/torn:1","sha256:');
    store = await openStore({ root });
    expect(await store.images.len()).toBe(1);
    const report = await store.fsck();
    expect(report.problems.map((p) => p.kind)).toContain("journal-torn-tail");
    await store.references.tag("ok:1", image.id);
    const text = await fsp.readFile(jp, "utf8");
    expect(text).not.toContain("torn:1");
    expect(text.endsWith("\n")).toBe(true);
    await store.close();
    store = await openStore({ root });
    expect(await store.references.resolve("ok:1")).toBe(image.id);
  });

  it("skips a corrupt record (bad checksum) and fsck reports it", async () => {
    const { image } = await twoLayerImage();
    await store.references.tag("keep:1", image.id);
    await store.close();
    const jp = path.join(root, "images", "journal.log");
    await fsp.appendFile(jp, `00000000 ["r","docker.io/library/keep:1"]\n`);
    store = await openStore({ root });
    expect(await store.references.resolve("keep:1")).toBe(image.id);
    const report = await store.fsck({ repair: true });
    expect(report.problems.some((p) => p.kind === "journal-corrupt-record" && p.path === jp)).toBe(true);
    await store.close();
    store = await openStore({ root });
    expect((await store.fsck()).problems).toEqual([]);
  });
});

describe("fsck", () => {
  it("passes on a healthy store", async () => {
    const { image } = await twoLayerImage();
    await store.references.tag("x:1", image.id);
    const r = await store.fsck();
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.checked.images).toBe(1);
    expect(r.checked.references).toBe(1);
    expect(r.checked.layers).toBe(2);
    expect(r.checked.blobs).toBe(4);
  });

  it("reports a blob a pin keeps that is missing as damage, and an unreadable pin record", async () => {
    const kept = await store.content.put(new TextEncoder().encode("kept by a pin"));
    const gone = sha256("never stored");
    await store.pins.write("registry.x", { blobs: [kept.digest, gone] });
    const r = await store.fsck();
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      expect.objectContaining({ kind: "pin-blob-missing", subject: gone, path: path.join(root, "pins", "registry.x.json"), garbage: false }),
    ]);
    await fsp.writeFile(path.join(root, "pins", "registry.x.json"), "{");
    expect((await store.fsck()).problems.map((p) => p.kind)).toContain("pin-unreadable");
  });

  it("finds a corrupted config blob and names its path", async () => {
    const { image } = await twoLayerImage();
    const file = path.join(root, "blobs", "sha256", image.id.slice(7));
    await fsp.chmod(file, 0o644).catch(() => {});
    await fsp.writeFile(file, "{}");
    const r = await store.fsck();
    expect(r.ok).toBe(false);
    expect(r.problems.some((p) => p.path === file && p.kind === "blob-corrupt")).toBe(true);
    expect(r.problems.some((p) => p.kind === "image-config-bad" && p.subject === image.id)).toBe(true);
    expect((await errorOf(store.images.get(image.id))).code).toBe("ERR_DIGEST_MISMATCH");
  });

  it("serves a config verified once from memory until fsck finds it damaged on disk", async () => {
    const { image } = await twoLayerImage();
    const before = await store.images.get(image.id);
    const file = path.join(root, "blobs", "sha256", image.id.slice(7));
    await fsp.chmod(file, 0o644).catch(() => {});
    await fsp.writeFile(file, "{}");
    // content addressed: the verified bytes are still the image's config
    expect(Buffer.from((await store.images.get(image.id)).configBytes)).toEqual(Buffer.from(before.configBytes));
    expect((await store.fsck()).problems.some((p) => p.kind === "image-config-bad")).toBe(true);
    expect((await errorOf(store.images.get(image.id))).code).toBe("ERR_DIGEST_MISMATCH");
  });

  it("map leaves out, without a warning, an image another process deletes while it reads", async () => {
    const { image } = await twoLayerImage();
    await store.layers.register([tarC]);
    const other = await store.images.create(makeConfig([diffIdOf(tarC)]));
    const elsewhere = await openStore({ root });
    // the other process deletes the image (and collects its config) just before this one reads it
    const get = store.images.get.bind(store.images);
    store.images.get = async (id) => {
      if (id === image.id) {
        await elsewhere.images.delete(image.id, { prune: true });
      }
      return get(id);
    };
    const told: string[] = [];
    const m = await store.images.map({ onUnusable: (id) => told.push(id) });
    expect([...m.keys()]).toEqual([other.id]);
    expect(told).toEqual([]);
    await elsewhere.close();
  });

  it("an image whose layer or config is gone is not offered (map skips it, told to onUnusable); repair removes it and its tags", async () => {
    const { b, image } = await twoLayerImage();
    await store.layers.register([tarC]);
    const other = await store.images.create(makeConfig([diffIdOf(tarC)]));
    await store.references.tag("gone:1", image.id);
    await store.references.tag("kept:1", other.id);
    // the top layer's record and holders vanish (a hand-made accident)
    await fsp.rm(path.join(root, "layers", "sha256", `${b.chainID.slice(7)}.json`));
    await fsp.rm(path.join(root, "layers", "refs", "sha256", b.chainID.slice(7)), { recursive: true, force: true });
    const told: Array<[string, string]> = [];
    const m = await store.images.map({ onUnusable: (id, reason) => told.push([id, (reason as { code?: string }).code ?? ""]) });
    expect([...m.keys()]).toEqual([other.id]);
    expect(told).toEqual([[image.id, "ERR_LAYER_NOT_FOUND"]]);
    // the other's config gone too: skipped for its config by a store opened now
    // (one that verified the config before keeps serving those bytes: content addressed)
    const cfg = path.join(root, "blobs", "sha256", other.id.slice(7));
    const saved = await fsp.readFile(cfg);
    await fsp.rm(cfg);
    told.length = 0;
    const fresh = await openStore({ root });
    expect([...(await fresh.images.map({ onUnusable: (id, reason) => told.push([id, (reason as { code?: string }).code ?? ""]) })).keys()]).toEqual([]);
    expect(told.sort()).toEqual(
      [
        [image.id, "ERR_LAYER_NOT_FOUND"],
        [other.id, "ERR_BLOB_MISSING"],
      ].sort(),
    );
    await fresh.close();
    await fsp.writeFile(cfg, saved);

    const r = await store.fsck({ repair: true });
    expect(r.problems.find((p) => p.kind === "image-layer-missing")).toMatchObject({ subject: image.id, repaired: true, garbage: false });
    expect(r.problems.filter((p) => !p.repaired && !p.garbage)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(await store.images.has(image.id)).toBe(false);
    expect((await store.references.list()).map((x) => x.ref)).toEqual(["docker.io/library/kept:1"]);
    expect((await store.fsck()).problems).toEqual([]);
  });

  it("repairs an orphan hold (create interrupted after acquire) and a lost hold", async () => {
    const { b, image } = await twoLayerImage();
    const ghost = `sha256:${"e".repeat(64)}`;
    await store.layers.acquire(b.chainID, `image:${ghost}`);
    await store.layers.release(b.chainID, `image:${image.id}`);
    const r = await store.fsck({ repair: true });
    const kinds = r.problems.map((p) => p.kind).sort();
    expect(kinds).toEqual(["image-hold-missing", "layer-hold-orphan"]);
    expect(r.problems.every((p) => p.repaired)).toBe(true);
    expect(await store.layers.holders(b.chainID)).toEqual([`image:${image.id}`]);
    expect((await store.fsck()).problems).toEqual([]);
  });
});
