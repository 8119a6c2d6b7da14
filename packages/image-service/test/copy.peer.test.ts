/**
 * `copy` with the real docker-registry (distribution 2.8), skopeo and umoci:
 * store → registry → layout → store keeps the image ID and the manifest
 * digest, skopeo and umoci read what berth wrote, berth reads the layout
 * skopeo wrote, and a registry-to-registry copy into a second repository
 * mounts every blob; OCI archives both ways with skopeo. Skips without the
 * peers, fails under BERTH_REQUIRE_PEERS=1.
 */
import { join } from "node:path";
import { execOk, type RegistryPeer, registry, requirePeer } from "@berth/peers";
import { afterAll, describe, expect, it } from "vitest";
import { freshService, makeDir } from "./helpers.js";

const reg = await registry();
const skopeo = await requirePeer("skopeo");
const umoci = await requirePeer("umoci");
afterAll(async () => {
  await reg?.stop();
});

describe.skipIf(!reg)("copy with docker-registry", { timeout: 120_000 }, () => {
  const r = reg as RegistryPeer;

  it("store → registry → layout → store: same image ID and manifest digest; the registry copy to a second repository mounts", async () => {
    const a = await freshService();
    const base = await a.svc.build({ layers: [await makeDir(a.dir, "base", { "etc/os-release": "ID=berth-copy\n" })] });
    const { id } = await a.svc.build({ base: base.id, layers: [await makeDir(a.dir, "app", { "app/x": "x\n" })], tags: ["app:1"] });
    const up = await a.svc.copy("berth:app:1", `docker://${r.host}/copy-test/app:1`);
    expect(up).toMatchObject({ id, manifestsWritten: 1 });
    expect(up.blobs.map((b) => b.status)).toEqual(["uploaded", "uploaded", "uploaded"]);
    // to a registry the layers go gzipped, as a push sends them (the store keeps its tars)
    expect(up.digest).not.toBe((await a.store.images.manifest(id)).digest);
    const plain = await a.svc.copy("berth:app:1", `docker://${r.host}/copy-test/plain:1`, { compression: "none" });
    expect(plain.digest).toBe((await a.store.images.manifest(id)).digest);

    const mark = (await r.accessLog()).length;
    const across = await a.svc.copy(`docker://${r.host}/copy-test/app:1`, `docker://${r.host}/copy-test/other:1`);
    expect(across.digest).toBe(up.digest);
    expect(across.blobs.every((b) => b.status === "mounted" && b.mountedFrom === "copy-test/app")).toBe(true);
    const posts = (await r.accessLog()).slice(mark).filter((e) => e.method === "POST");
    expect(posts.length).toBe(3);
    expect(posts.every((e) => e.path.includes("mount="))).toBe(true);

    const dir = join(a.dir, "layout");
    const down = await a.svc.copy(`docker://${r.host}/copy-test/other:1`, `oci:${dir}:v1`);
    expect(down.digest).toBe(up.digest);

    const b = await freshService();
    const into = await b.svc.copy(`oci:${dir}:v1`, "berth:copied:1");
    expect(into.id).toBe(id);
    expect((await b.store.images.manifest(id)).digest).toBe(up.digest);
    expect((await b.store.fsck()).ok).toBe(true);

    if (skopeo) {
      const viaRegistry = JSON.parse((await execOk(skopeo, ["inspect", "--tls-verify=false", `docker://${r.host}/copy-test/other:1`])).stdout) as { Digest: string };
      expect(viaRegistry.Digest).toBe(up.digest);
      const viaLayout = JSON.parse((await execOk(skopeo, ["inspect", `oci:${dir}:v1`])).stdout) as { Digest: string };
      expect(viaLayout.Digest).toBe(up.digest);
    }
    if (umoci) {
      const refs = (await execOk(umoci, ["list", "--layout", dir])).stdout.split("\n").filter(Boolean);
      expect(refs).toEqual(["v1"]);
      const stat = (await execOk(umoci, ["stat", "--image", `${dir}:v1`, "--json"])).stdout;
      expect(JSON.parse(stat)).toHaveProperty("history");
    }
  });

  it.skipIf(!skopeo)("OCI archives both ways: skopeo reads berth's, berth reads skopeo's", async () => {
    const a = await freshService();
    const { id } = await a.svc.build({ layers: [await makeDir(a.dir, "l", { f: "archive\n" })], tags: ["app:arch"] });
    const mine = join(a.dir, "berth.tar");
    const written = await a.svc.copy("berth:app:arch", `oci-archive:${mine}:x`);
    const read = JSON.parse((await execOk(skopeo!, ["inspect", `oci-archive:${mine}:x`])).stdout) as { Digest: string };
    expect(read.Digest).toBe(written.digest);
    const theirs = join(a.dir, "skopeo.tar");
    await execOk(skopeo!, ["copy", `oci-archive:${mine}:x`, `oci-archive:${theirs}:y`]);
    const b = await freshService();
    expect((await b.svc.copy(`oci-archive:${theirs}:y`, "berth:from-skopeo:1")).id).toBe(id);
  });

  it.skipIf(!skopeo)("docker save archives both ways: skopeo reads berth's, berth reads skopeo's", async () => {
    const a = await freshService();
    const { id } = await a.svc.build({ layers: [await makeDir(a.dir, "l", { f: "docker archive\n" })], tags: ["app:da"] });
    const mine = join(a.dir, "berth-docker.tar");
    await a.svc.copy("berth:app:da", `docker-archive:${mine}:team/app:da`);
    const cfg = JSON.parse((await execOk(skopeo!, ["inspect", "--config", `docker-archive:${mine}`])).stdout) as { rootfs: { diff_ids: string[] } };
    expect(cfg.rootfs.diff_ids).toEqual((await a.svc.inspect(id)).config.rootfs.diff_ids);
    const theirs = join(a.dir, "skopeo-docker.tar");
    await execOk(skopeo!, ["copy", `docker-archive:${mine}`, `docker-archive:${theirs}:from/skopeo:1`]);
    const b = await freshService();
    expect((await b.svc.copy(`docker-archive:${theirs}`, "berth:from-skopeo:da")).id).toBe(id);
  });

  it.skipIf(!skopeo)("berth copies the layout skopeo wrote into the store with skopeo's manifest digest", async () => {
    const a = await freshService();
    const { id } = await a.svc.build({ layers: [await makeDir(a.dir, "l", { "f": "skopeo\n" })], tags: ["app:s"] });
    await a.svc.copy("berth:app:s", `docker://${r.host}/copy-test/skopeo:1`);
    const dir = join(a.dir, "skopeo-layout");
    await execOk(skopeo!, ["copy", "--src-tls-verify=false", `docker://${r.host}/copy-test/skopeo:1`, `oci:${dir}:s`]);
    const written = JSON.parse((await execOk(skopeo!, ["inspect", `oci:${dir}:s`])).stdout) as { Digest: string };
    const b = await freshService();
    const into = await b.svc.copy(`oci:${dir}:s`, "berth:from-skopeo:1");
    expect(into.id).toBe(id);
    expect(into.digest).toBe(written.Digest);
    expect((await b.svc.inspect("from-skopeo:1")).id).toBe(id);
  });
});
