/**
 * `copy` between the store and OCI layouts (the registry end is in
 * copy.peer.test.ts): round trips keep image IDs and manifests, a
 * multi-platform index is copied whole byte for byte or one platform out of
 * it, and bad input fails typed with nothing stored.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { formatPlatform, hostPlatform, MEDIA_TYPE_OCI_INDEX } from "@berth/oci";
import { OciLayout } from "@berth/registry";
import { describe, expect, it } from "vitest";
import type { ImageService } from "../src/index.js";
import { freshService, makeDir } from "./helpers.js";

/** A two-layer image for `platform` in `svc`, tagged `tag`. */
async function image(svc: ImageService, dir: string, tag: string, platform?: string): Promise<string> {
  const base = await svc.build({ layers: [await makeDir(dir, `base-${tag}`, { "etc/os-release": "ID=berth-test\n" })], ...(platform ? { platform } : {}) });
  const app = await svc.build({
    base: base.id,
    layers: [await makeDir(dir, `app-${tag}`, { "app/run.sh": `#!/bin/sh\necho ${platform ?? "host"}\n` })],
    changes: ['CMD ["/app/run.sh"]'],
    tags: [tag],
  });
  return app.id;
}

const host = formatPlatform(hostPlatform());
const other = hostPlatform().architecture === "arm64" ? "linux/amd64" : "linux/arm64";

describe("copy between the store and OCI layouts", () => {
  it("store → layout → another store keeps the image ID and the manifest", async () => {
    const a = await freshService();
    const id = await image(a.svc, a.dir, "app:1");
    const out = join(a.dir, "layout");
    const pushed = await a.svc.copy("berth:app:1", `oci:${out}:v1`);
    expect(pushed).toMatchObject({ source: "berth:app:1", destination: `oci:${out}:v1`, id, manifestsWritten: 1 });
    expect(pushed.blobs.map((b) => b.status)).toEqual(["written", "written", "written"]);
    expect(pushed.digest).toBe((await a.store.images.manifest(id)).digest);
    const layout = await OciLayout.open(out);
    expect((await layout.resolve("v1")).digest).toBe(pushed.digest);

    // a second copy finds everything there
    const again = await a.svc.copy("berth:app:1", `oci:${out}:v1`);
    expect(again.manifestsWritten).toBe(0);
    expect(again.blobs.every((b) => b.status === "exists")).toBe(true);

    const b = await freshService();
    const pulled = await b.svc.copy(`oci:${out}:v1`, "berth:team/app:2");
    expect(pulled).toMatchObject({ id, digest: pushed.digest });
    expect((await b.svc.inspect("team/app:2")).id).toBe(id);
    expect((await b.store.images.manifest(id)).digest).toBe(pushed.digest);
    expect((await b.store.fsck()).ok).toBe(true);
  });

  it("copies a multi-platform index whole, or the one platform asked for", async () => {
    const { svc, dir } = await freshService();
    const hostId = await image(svc, dir, "app:host", host);
    const otherId = await image(svc, dir, "app:other", other);
    const src = join(dir, "multi");
    const h = await svc.copy("berth:app:host", `oci:${src}:host`);
    const o = await svc.copy("berth:app:other", `oci:${src}:other`);
    const layout = await OciLayout.open(src);
    const entry = (r: typeof h, platform: string) => {
      const [os, architecture, variant] = platform.split("/");
      return { mediaType: r.mediaType, digest: r.digest, size: r.size, platform: { os, architecture, ...(variant ? { variant } : {}) } };
    };
    const indexBytes = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [entry(o, other), entry(h, host)] }, null, 2),
    );
    const indexDigest = await layout.writeBytes(indexBytes);
    await layout.setRef("multi", { mediaType: MEDIA_TYPE_OCI_INDEX, digest: indexDigest, size: indexBytes.length });

    const all = await svc.copy(`oci:${src}:multi`, `oci:${join(dir, "all")}:m`, { allPlatforms: true });
    expect(all).toMatchObject({ digest: indexDigest, mediaType: MEDIA_TYPE_OCI_INDEX, manifestsWritten: 3 });
    expect(all.platform).toBeUndefined();
    const copiedIndex = await readFile(join(dir, "all", "blobs", "sha256", indexDigest.slice(7)));
    expect(Buffer.compare(copiedIndex, Buffer.from(indexBytes))).toBe(0);
    expect(await readdir(join(dir, "all", "blobs", "sha256"))).toHaveLength(1 + 2 + 2 * 3 - 1); // the shared base layer once

    const one = await svc.copy(`oci:${src}:multi`, `oci:${join(dir, "one")}:m`);
    expect(one).toMatchObject({ digest: h.digest, platform: host, manifestsWritten: 1 });
    const picked = await svc.copy(`oci:${src}:multi`, `oci:${join(dir, "one")}:o`, { platform: other });
    expect(picked).toMatchObject({ digest: o.digest, platform: other });

    const b = await freshService();
    expect((await b.svc.copy(`oci:${src}:multi`, "berth:app:m", { platform: other })).id).toBe(otherId);
    expect((await b.svc.copy(`oci:${src}:multi`, "berth:app:n")).id).toBe(hostId);
  });

  it("an OCI archive: written whole when the copy is, read back into another store; a failed copy leaves no file", async () => {
    const a = await freshService();
    const id = await image(a.svc, a.dir, "app:1");
    const file = join(a.dir, "app.tar");
    const out = await a.svc.copy("berth:app:1", `oci-archive:${file}:v1`);
    expect(out).toMatchObject({ destination: `oci-archive:${file}:v1`, id, digest: (await a.store.images.manifest(id)).digest });
    const b = await freshService();
    expect((await b.svc.copy(`oci-archive:${file}:v1`, "berth:back:1")).id).toBe(id);
    expect((await b.svc.copy(`oci-archive:${file}`, "berth:back:2")).id).toBe(id); // the only entry
    // a copy that fails (no such ref in the source) writes no archive
    const none = join(a.dir, "none.tar");
    await expect(b.svc.copy(`oci-archive:${file}:nope`, `oci-archive:${none}`)).rejects.toMatchObject({ code: "ERR_LAYOUT_REF_NOT_FOUND" });
    const failing = await b.svc.copy("berth:no-such:1", `oci-archive:${none}`).catch((e: unknown) => e);
    expect((failing as { code?: string }).code).toMatch(/NOT_FOUND/);
    expect(await readdir(a.dir)).not.toContain("none.tar");
    expect((await readdir(a.dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("docker save archives as ends, through a temporary store: out of the store, out of a layout, back in", async () => {
    const a = await freshService();
    const id = await image(a.svc, a.dir, "app:1");
    const file = join(a.dir, "saved.tar");
    const out = await a.svc.copy("berth:app:1", `docker-archive:${file}:team/app:2`);
    expect(out).toMatchObject({ id, destination: `docker-archive:${file}:team/app:2` });
    expect((await a.svc.inspect(id)).repoTags).toEqual(["app:1"]); // the archive's name is not a tag of the store
    const b = await freshService();
    const loaded = await b.svc.load(file);
    expect(loaded.images.map((i) => [i.id, i.tags])).toEqual([[id, ["docker.io/team/app:2"]]]);
    const c = await freshService();
    expect((await c.svc.copy(`docker-archive:${file}`, "berth:back:1")).id).toBe(id);
    expect((await c.svc.copy(`docker-archive:${file}:team/app:2`, `oci:${join(c.dir, "layout")}:v1`)).id).toBe(id);
    const again = join(c.dir, "again.tar");
    expect((await c.svc.copy(`oci:${join(c.dir, "layout")}:v1`, `docker-archive:${again}:x:1`)).id).toBe(id);
    expect((await b.svc.load(again)).images[0]!.tags).toEqual(["docker.io/library/x:1"]);
    // an archive of two images needs a name
    const two = join(a.dir, "two.tar");
    await image(a.svc, a.dir, "other:1");
    await a.svc.save(["app:1", "other:1"], two);
    await expect(c.svc.copy(`docker-archive:${two}`, "berth:y:1")).rejects.toMatchObject({ code: "ERR_INVALID_LOCATION" });
    expect((await c.svc.copy(`docker-archive:${two}:other:1`, "berth:y:1")).id).not.toBe(id);
  });

  it("refuses bad locations and options with typed errors", async () => {
    const { svc, dir } = await freshService();
    await image(svc, dir, "app:1");
    const code = async (p: Promise<unknown>) => ((await p.then(() => undefined, (e: unknown) => e)) as { code?: string })?.code;
    expect(await code(svc.copy("berth:app:1", "berth:app:2"))).toBe("ERR_INVALID_LOCATION");
    expect(await code(svc.copy("app:1", `oci:${dir}/x`))).toBe("ERR_INVALID_LOCATION");
    expect(await code(svc.copy("berth:", `oci:${dir}/x`))).toBe("ERR_INVALID_LOCATION");
    expect(await code(svc.copy(`oci:${dir}/x`, "berth:app@sha256:" + "0".repeat(64)))).toBe("ERR_INVALID_LOCATION");
    expect(await code(svc.copy("berth:app:1", `oci:${dir}/x`, { allPlatforms: true, platform: host }))).toBe("ERR_INVALID_LOCATION");
    expect(await code(svc.copy(`oci:${dir}/x`, "berth:app:2", { allPlatforms: true }))).toBe("ERR_INVALID_LOCATION");
    expect(await code(svc.copy("berth:no-such:1", `oci:${dir}/x`))).toMatch(/NOT_FOUND/);
  });

  it("a layer that does not verify fails the copy into the store and leaves nothing", async () => {
    const a = await freshService();
    const id = await image(a.svc, a.dir, "app:1");
    const out = join(a.dir, "layout");
    const copied = await a.svc.copy("berth:app:1", `oci:${out}:v1`);
    const layer = (await a.store.images.manifest(id)).manifest.layers[1]!;
    const file = join(out, "blobs", "sha256", layer.digest.slice(7));
    const bytes = await readFile(file);
    bytes[bytes.length - 1]! ^= 0xff;
    await writeFile(file, bytes);

    const b = await freshService();
    const err = await b.svc.copy(`oci:${out}:v1`, "berth:app:1").catch((e: unknown) => e);
    // the tar reader or the digest check, whichever sees it first
    expect(["ERR_INVALID_TAR", "ERR_DIGEST_MISMATCH"], String(err)).toContain((err as { code?: string }).code);
    expect(await b.store.images.has(id)).toBe(false);
    expect((await b.svc.list()).length).toBe(0);
    expect(copied.digest).toMatch(/^sha256:/);
    expect((await b.store.fsck()).ok).toBe(true);
  });
});
