/**
 * Real clients against `berth serve`'s registry over the berth store (what
 * `serveStore` runs): an image dockerd pushes becomes an image of the store
 * with docker's image ID (a re-push sends only HEADs, a pull gives the same
 * ID back); an image `berth load` put in the store is pullable by docker with
 * the same ID; skopeo copies out of the store to an OCI layout and back in
 * under a new name, which the store then holds as the same image; podman
 * pulls and pushes, buildah pushes an image it built on a pulled one.
 * Skips without the peers; fails under BERTH_REQUIRE_PEERS=1.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUSYBOX_TAG, type DockerPeer, buildImage, busyboxBase, dockerd, exec, requirePeer } from "@berth/peers";
import { parseDigest } from "@berth/digest";
import bcrypt from "bcryptjs";
import { afterAll, describe, expect, it } from "vitest";
import type { RequestLogEntry } from "../src/log.js";
import { startStoreBerth, tempDir } from "./helpers.js";

const peer: DockerPeer | undefined = await dockerd();
const skopeo = await requirePeer("skopeo");
const podman = await requirePeer("podman");
const buildah = await requirePeer("buildah");
const tmp = tempDir();
afterAll(() => tmp.cleanup());
const RUN = `${process.pid}-${Date.now().toString(36)}`;

/** A classic-built image unique to this run (so dockerd never has its layers from an earlier run). */
async function uniqueImage(name: string): Promise<{ tag: string; id: string }> {
  await busyboxBase(peer!);
  const tag = `berth-regstore-${name}-${RUN}:1`;
  const { id } = await buildImage(peer!, { dockerfile: `FROM ${BUSYBOX_TAG}\nRUN echo ${name}-${RUN} > /unique.txt\n`, tag });
  return { tag, id };
}

async function dockerId(ref: string): Promise<string> {
  return (JSON.parse((await peer!.run(["image", "inspect", ref])).stdout) as { Id: string }[])[0]!.Id;
}

async function storeBerth(options: Parameters<typeof startStoreBerth>[0] = {}) {
  const log: RequestLogEntry[] = [];
  const berth = await startStoreBerth({ log: { format: "json", write: (line) => log.push(JSON.parse(line) as RequestLogEntry) }, ...options });
  return { ...berth, log, host: `${berth.server.host}:${berth.server.port}`, store: berth.server.service.store };
}

describe.skipIf(!peer)("docker against berth serve over the store", () => {
  it("docker push makes an image of the store with docker's ID; a re-push sends only HEADs; a pull gives it back", async () => {
    const b = await storeBerth();
    const img = await uniqueImage("push");
    const ref = `${b.host}/team/x:${RUN}`;
    try {
      await peer!.run(["tag", img.id, ref]);
      await peer!.run(["push", ref]);
      expect(b.log.every((e) => e.status < 500)).toBe(true);
      // the mapping: team/x ↔ docker.io/team/x, the image ID is the config digest
      expect(await b.store.references.resolve(`docker.io/team/x:${RUN}`)).toBe(img.id);
      expect((await b.store.images.get(img.id)).id).toBe(img.id);

      const before = b.log.length;
      await peer!.run(["push", ref]);
      const again = b.log.slice(before);
      expect(again.some((e) => e.method === "POST" || e.method === "PATCH")).toBe(false);
      expect(again.filter((e) => e.method === "HEAD" && e.path.includes("/blobs/")).length).toBeGreaterThan(0);

      await peer!.run(["rmi", ref, img.tag]);
      await peer!.run(["pull", ref]);
      expect(await dockerId(ref)).toBe(img.id);
    } finally {
      await peer!.docker(["rmi", ref, img.tag]);
      await b.close();
    }
  });

  it("an image berth loaded is pullable by docker with the same image ID", async () => {
    const b = await storeBerth();
    const img = await uniqueImage("load");
    const tar = join(tmp.dir, `load-${RUN}.tar`);
    const name = img.tag.slice(0, img.tag.indexOf(":"));
    const ref = `${b.host}/${name}:1`;
    try {
      await peer!.run(["save", "-o", tar, img.tag]);
      await peer!.run(["rmi", img.tag]);
      await b.server.service.load(tar);
      // berth load of name:1 is docker.io/library/name:1 in the store: /v2/<name>/manifests/1
      expect(await b.store.references.resolve(`docker.io/library/${name}:1`)).toBe(img.id);
      const own = await b.store.images.manifest(img.id);
      await peer!.run(["pull", ref]);
      expect(await dockerId(ref)).toBe(img.id);
      const inspected = JSON.parse((await peer!.run(["image", "inspect", ref])).stdout) as { RepoDigests: string[] }[];
      expect(inspected[0]!.RepoDigests).toContain(`${b.host}/${name}@${own.digest}`);
      expect(b.log.some((e) => e.path.startsWith(`/v2/${name}/manifests/1`))).toBe(true);
    } finally {
      await peer!.docker(["rmi", ref]);
      await b.close();
    }
  });
});

describe.skipIf(!peer)("docker with token auth against berth serve over the store", () => {
  it("docker login, push into the store and pull back; a blob is not readable through another repository", async () => {
    const htpasswd = join(tmp.dir, "htpasswd");
    writeFileSync(htpasswd, `alice:${bcrypt.hashSync("wonderland", 4)}\n`);
    const b = await storeBerth({ auth: { mode: "token", htpasswd } });
    const img = await uniqueImage("token");
    const ref = `${b.host}/secure/app:1`;
    try {
      await peer!.run(["tag", img.id, ref]);
      await peer!.run(["login", b.host, "-u", "alice", "--password-stdin"], { input: "wonderland\n" });
      await peer!.run(["push", ref]);
      expect(await b.store.references.resolve("docker.io/secure/app:1")).toBe(img.id);
      const backend = b.server.registry!;
      expect((await backend.statBlob({ repository: "secure/app", membersOnly: true }, parseDigest(img.id))).digest).toBe(img.id);
      await expect(backend.statBlob({ repository: "other/app", membersOnly: true }, parseDigest(img.id))).rejects.toMatchObject({ code: "ERR_BLOB_UNKNOWN" });
      await peer!.run(["rmi", ref, img.tag]);
      await peer!.run(["pull", ref]);
      expect(await dockerId(ref)).toBe(img.id);
    } finally {
      await peer!.docker(["logout", b.host]);
      await peer!.docker(["rmi", ref, img.tag]);
      await b.close();
    }
  });
});

describe.skipIf(!peer || !skopeo)("skopeo against berth serve over the store", () => {
  it("copies a loaded image out to an OCI layout and back in under a new name: the same image in the store", async () => {
    const b = await storeBerth();
    const img = await uniqueImage("skopeo");
    const tar = join(tmp.dir, `skopeo-${RUN}.tar`);
    const name = img.tag.slice(0, img.tag.indexOf(":"));
    const sk = (args: string[]) => exec(skopeo!, args, { timeoutMs: 120_000 });
    try {
      await peer!.run(["save", "-o", tar, img.tag]);
      await b.server.service.load(tar);
      const oci = join(tmp.dir, `oci-${RUN}`);
      const out = await sk(["copy", "--src-tls-verify=false", `docker://${b.host}/${name}:1`, `oci:${oci}:x`]);
      expect(out.code, out.stderr).toBe(0);
      const back = await sk(["copy", "--dest-tls-verify=false", `oci:${oci}:x`, `docker://${b.host}/copied/${name}:2`]);
      expect(back.code, back.stderr).toBe(0);
      expect(await b.store.references.resolve(`docker.io/copied/${name}:2`)).toBe(img.id);
      const tags = await sk(["list-tags", "--tls-verify=false", `docker://${b.host}/copied/${name}`]);
      expect(JSON.parse(tags.stdout).Tags).toEqual(["2"]);
      // a Docker v2 schema 2 push keeps its own bytes (and digest), beside the store's OCI manifest
      const v2 = await sk(["copy", "--dest-tls-verify=false", "--format", "v2s2", `oci:${oci}:x`, `docker://${b.host}/v2s2/${name}:3`]);
      expect(v2.code, v2.stderr).toBe(0);
      const inspect = JSON.parse((await sk(["inspect", "--raw", "--tls-verify=false", `docker://${b.host}/v2s2/${name}:3`])).stdout) as { mediaType: string };
      expect(inspect.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
      expect(await b.store.references.resolve(`docker.io/v2s2/${name}:3`)).toBe(img.id);
    } finally {
      await peer!.docker(["rmi", img.tag]);
      await b.close();
    }
  });
});

describe.skipIf(!peer || !podman || !buildah)("podman and buildah against berth serve over the store", () => {
  it("podman pulls a loaded image and pushes it under a new name; buildah pushes a built one: images of the store", async () => {
    const b = await storeBerth();
    const img = await uniqueImage("podman");
    const tar = join(tmp.dir, `podman-${RUN}.tar`);
    const name = img.tag.slice(0, img.tag.indexOf(":"));
    // their own storage under the temp dir (vfs: no overlay needed), so nothing of the machine's is touched
    const storage = ["--root", join(tmp.dir, "containers"), "--runroot", join(tmp.dir, "containers-run"), "--storage-driver", "vfs"];
    const run = async (tool: string, args: string[]) => {
      const r = await exec(tool, [...storage, ...args], { timeoutMs: 120_000 });
      expect(r.code, `${tool} ${args.join(" ")}: ${r.stderr}`).toBe(0);
      return r;
    };
    try {
      await peer!.run(["save", "-o", tar, img.tag]);
      await b.server.service.load(tar);
      await run(podman!, ["pull", "--tls-verify=false", `${b.host}/${name}:1`]);
      const podmanId = (await run(podman!, ["image", "inspect", "--format", "{{.Id}}", `${b.host}/${name}:1`])).stdout.trim();
      expect(`sha256:${podmanId}`).toBe(img.id);
      await run(podman!, ["tag", `${b.host}/${name}:1`, `${b.host}/from-podman/${name}:2`]);
      await run(podman!, ["push", "--tls-verify=false", `${b.host}/from-podman/${name}:2`]);
      expect(await b.store.references.resolve(`docker.io/from-podman/${name}:2`)).toBe(img.id);

      // buildah: a container from the pulled image, a file added, committed and pushed
      const ctr = (await run(buildah!, ["from", "--pull-never", `${b.host}/${name}:1`])).stdout.trim();
      const file = join(tmp.dir, `buildah-${RUN}.txt`);
      writeFileSync(file, `buildah ${RUN}\n`);
      await run(buildah!, ["copy", ctr, file, "/buildah.txt"]);
      await run(buildah!, ["commit", ctr, `${b.host}/from-buildah/${name}:3`]);
      await run(buildah!, ["push", "--tls-verify=false", `${b.host}/from-buildah/${name}:3`]);
      await run(buildah!, ["rm", ctr]);
      const built = await b.store.references.resolve(`docker.io/from-buildah/${name}:3`);
      const image = await b.store.images.get(built);
      expect(image.config.rootfs.diff_ids.length).toBe((await b.store.images.get(img.id)).config.rootfs.diff_ids.length + 1);
      expect((await b.store.fsck()).ok).toBe(true);
    } finally {
      await peer!.docker(["rmi", img.tag]);
      await b.close();
    }
  });
});
