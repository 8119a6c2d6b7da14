import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeTar } from "@berth/image-store/tar-fixture";
import { describe, expect, it } from "vitest";
import { ImageServiceErrorCode } from "../src/index.js";
import { blobCount, freshService, makeDir, tarStream } from "./helpers.js";

describe("build and import", () => {
  it("builds from a base, a directory layer and a tar stream with --change edits, parent set, tagged", async () => {
    const { svc, store, dir } = await freshService();
    const base = await svc.import(tarStream({ "bin/sh": "shell" }), { tags: ["base:1"], changes: ["ENV A=1", 'CMD ["/bin/sh"]'] });
    expect(base.image.config.config?.Env).toEqual(["A=1"]);
    expect(base.image.config.history?.[0]?.comment).toBe("Imported from -");
    const app = await makeDir(dir, "app", { "app/run": "#!/bin/sh\n", "app/data.txt": "x" });
    const built = await svc.build({
      base: "base:1",
      layers: [app, { stream: tarStream({ "etc/motd": "hi" }), name: "motd.tar" }],
      changes: ["WORKDIR /app", "ENV B=2", "LABEL org.example.k=v"],
      tags: ["app:1", "registry.local:5000/app:1"],
      comment: "two layers",
    });
    const c = built.image.config;
    expect(c.rootfs.diff_ids).toHaveLength(3);
    expect(c.rootfs.diff_ids[0]).toBe(base.image.config.rootfs.diff_ids[0]);
    expect(c.config?.Env).toEqual(["A=1", "B=2"]);
    expect(c.config?.Cmd).toEqual(["/bin/sh"]);
    expect(c.config?.WorkingDir).toBe("/app");
    expect(c.config?.Labels).toEqual({ "org.example.k": "v" });
    expect(c.history?.map((h) => h.created_by)).toEqual([undefined, "berth import app", "berth import motd.tar"]);
    expect(await store.images.getParent(built.id)).toBe(base.id);
    expect(await store.references.resolve("registry.local:5000/app:1")).toBe(built.id);
    expect(built.tags).toEqual(["docker.io/library/app:1", "registry.local:5000/app:1"]);
    // the same directory gives the same layer (deterministic tar)
    const again = await svc.build({ layers: [app] });
    expect(again.layers[0]!.diffID).toBe(built.layers[0]!.diffID);
    expect((await store.fsck()).ok).toBe(true);
  });

  it("a build that fails after storing a layer removes it before it returns (a GC once its lease is gone)", async () => {
    const { svc, store } = await freshService();
    const before = await blobCount(store);
    const failing = (async function* () {
      yield makeTar({ "half.txt": "x".repeat(100_000) }).subarray(0, 2048);
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
    })();
    await expect(svc.build({ layers: [tarStream({ "stored.txt": "the first layer goes in whole" }), failing], tags: ["never:1"] })).rejects.toThrow(/no space left/);
    expect(await blobCount(store)).toBe(before);
    expect((await store.fsck()).problems).toEqual([]);
  });

  it("refuses a tar with an entry outside the root and keeps nothing of it", async () => {
    const { svc, store, dir } = await freshService();
    const before = await blobCount(store);
    const evil = join(dir, "evil.tar");
    await writeFile(evil, makeTar({ "../escape": "x" }));
    await expect(svc.import(evil, { tags: ["evil:1"] })).rejects.toMatchObject({ code: ImageServiceErrorCode.UNSAFE_PATH });
    expect(await store.images.len()).toBe(0);
    expect(await blobCount(store)).toBe(before);
    await expect(store.references.resolve("evil:1")).rejects.toMatchObject({ code: "ERR_IMAGE_NOT_FOUND" });
  });

  it("checks changes, platform and tags before writing anything", async () => {
    const { svc, store } = await freshService();
    await expect(svc.import(tarStream({ a: "1" }), { changes: ["FROBNICATE x"] })).rejects.toMatchObject({ code: ImageServiceErrorCode.INVALID_CHANGE });
    await expect(svc.import(tarStream({ a: "1" }), { platform: "linux" })).rejects.toMatchObject({ code: ImageServiceErrorCode.INVALID_PLATFORM });
    await expect(svc.import(tarStream({ a: "1" }), { tags: ["Bad Tag"] })).rejects.toMatchObject({ code: "ERR_INVALID_REFERENCE" });
    expect(await blobCount(store)).toBe(0);
  });

  it("an aborted build leaves nothing visible", async () => {
    const { svc, store } = await freshService();
    const ac = new AbortController();
    const stream = (async function* () {
      yield makeTar({ a: "1" }).subarray(0, 512);
      ac.abort(new Error("stop"));
      yield new Uint8Array(1024);
    })();
    await expect(svc.import({ stream }, { tags: ["x:1"], signal: ac.signal })).rejects.toThrow("stop");
    expect(await store.images.len()).toBe(0);
    await store.gc();
    expect(await blobCount(store)).toBe(0);
  });
});
