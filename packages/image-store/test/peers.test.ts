// The store root is an OCI image layout that real tools read and write:
// skopeo (`oci:<root>:<ref>`), umoci (`ls --layout`), and the Docker daemon
// (loading what skopeo copied out keeps the image ID).
import { execFile } from "node:child_process";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { dockerd, requirePeer } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FsStore, type Image, openStore } from "../src/index.js";
import { diffIdOf, gzip, makeConfig, makeTar, tempRoot } from "./helpers.js";

const run = promisify(execFile);

let root: string;
let work: string;
let cleanup: () => Promise<void>;
let store: FsStore;
let image: Image;

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempRoot("berth-image-store-peers-"));
  root = path.join(work, "store");
  store = await openStore({ root });
  const tar1 = makeTar({ "hello.txt": "hello from berth\n" });
  const tar2 = makeTar({ "etc/two.txt": "second layer\n" });
  const l1 = await store.layers.register([gzip(tar1)]);
  await store.layers.register([tar2], l1.chainID);
  image = await store.images.create(
    makeConfig([diffIdOf(tar1), diffIdOf(tar2)], {
      history: [{ created_by: "ADD hello.txt /" }, { created_by: "ENV A=1", empty_layer: true }, { created_by: "ADD two.txt /etc/" }],
    }),
  );
  await store.references.tag("berth-test/image-store-layout:1", image.id);
  await store.references.tag("localhost:5000/team/app:v2", image.id);
});
afterAll(async () => {
  await store.close();
  await cleanup();
});

describe("real peers read and write the store root", () => {
  it("umoci ls --layout lists every tag (normalised names)", async (ctx) => {
    const umoci = await requirePeer("umoci");
    if (!umoci) return ctx.skip();
    const { stdout } = await run(umoci, ["ls", "--layout", root]);
    expect(stdout.trim().split("\n").sort()).toEqual(["docker.io/berth-test/image-store-layout:1", "localhost:5000/team/app:v2"]);
  });

  it("skopeo copy oci:<root>:<ref> docker-archive: keeps the config bytes, and dockerd loads it with the same image ID", async (ctx) => {
    const skopeo = await requirePeer("skopeo");
    if (!skopeo) return ctx.skip();
    const archive = path.join(work, "x.tar");
    await run(skopeo, ["copy", `oci:${root}:docker.io/berth-test/image-store-layout:1`, `docker-archive:${archive}:berth-test/image-store-layout:1`]);
    const { stdout } = await run("tar", ["-xOf", archive, "manifest.json"]);
    const manifest = JSON.parse(stdout) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    expect(manifest).toHaveLength(1);
    expect(manifest[0]!.Config).toBe(`${image.id.slice(7)}.json`);
    expect(manifest[0]!.RepoTags).toEqual(["docker.io/berth-test/image-store-layout:1"]);
    expect(manifest[0]!.Layers).toHaveLength(2);
    // skopeo's own view of the layout agrees with berth's manifest.
    const raw = await run(skopeo, ["inspect", "--raw", `oci:${root}:localhost:5000/team/app:v2`]);
    expect(raw.stdout.trim()).toBe(Buffer.from((await store.images.manifest(image.id)).bytes).toString());

    const peer = await dockerd();
    if (!peer) return ctx.skip();
    await peer.run(["load", "-i", archive]);
    const inspected = await peer.run(["image", "inspect", "--format", "{{.Id}}", "berth-test/image-store-layout:1"]);
    expect(inspected.stdout.trim()).toBe(image.id);
    await peer.docker(["rmi", "berth-test/image-store-layout:1"]);
  });

  it("keeps what skopeo writes into the root (foreign index.json entry) across berth writes and GC", async (ctx) => {
    const skopeo = await requirePeer("skopeo");
    if (!skopeo) return ctx.skip();
    const archive = path.join(work, "y.tar");
    await run(skopeo, ["copy", `oci:${root}:docker.io/berth-test/image-store-layout:1`, `docker-archive:${archive}:other/img:1`]);
    await run(skopeo, ["copy", `docker-archive:${archive}`, `oci:${root}:foreign-tool/img:1`]);
    // berth keeps the entry when it rewrites index.json, and GC keeps its blobs.
    await store.references.tag("berth-test/extra:1", image.id);
    await store.references.untag("berth-test/extra:1");
    const gc = await store.gc();
    const idx = JSON.parse(await fsp.readFile(path.join(root, "index.json"), "utf8")) as { manifests: Array<{ annotations?: Record<string, string> }> };
    expect(idx.manifests.map((m) => m.annotations?.["org.opencontainers.image.ref.name"]).sort()).toEqual([
      "docker.io/berth-test/image-store-layout:1",
      "foreign-tool/img:1",
      "localhost:5000/team/app:v2",
    ]);
    expect(gc.removedBlobs).toEqual([]);
    await run(skopeo, ["inspect", `oci:${root}:foreign-tool/img:1`]);
    const report = await store.fsck();
    expect(report.problems).toEqual([]);
  });
});
