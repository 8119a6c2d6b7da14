import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { withCacheSource } from "../src/index.js";
import { freshService } from "./helpers.js";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: { code?: string }) => e.code,
  );

describe("withCacheSource: what berth cache import's argument names", () => {
  it("a path-like argument that is not there is a missing file, a name is an image the store lacks; fn never runs", async () => {
    const { store, dir } = await freshService();
    let ran = false;
    const fn = async () => {
      ran = true;
    };
    expect(await codeOf(withCacheSource(store, join(dir, "nowhere"), {}, fn))).toBe("ENOENT");
    expect(await codeOf(withCacheSource(store, "cache.tar", {}, fn))).toBe("ENOENT");
    expect(await codeOf(withCacheSource(store, "./cache", {}, fn))).toBe("ENOENT");
    expect(await codeOf(withCacheSource(store, "team/app:buildcache", {}, fn))).toBe("ERR_IMAGE_NOT_FOUND");
    expect(ran).toBe(false);
  });

  it("an existing directory is read as an OCI layout (one without a cache manifest is refused by the importer)", async () => {
    const { store, dir } = await freshService();
    const layout = join(dir, "layout");
    await mkdir(join(layout, "blobs", "sha256"), { recursive: true });
    await writeFile(join(layout, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(layout, "index.json"), '{"schemaVersion":2,"manifests":[]}');
    const code = await codeOf(withCacheSource(store, layout, {}, async () => {}));
    expect(code).not.toBe("ENOENT");
    expect(code).not.toBe("resolved");
  });
});
