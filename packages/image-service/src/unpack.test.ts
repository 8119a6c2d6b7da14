import { mkdir, readdir, readFile, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { type Header, pack } from "tar-stream";
import { describe, expect, it } from "vitest";
import { freshService } from "../test/helpers.js";

type Entry = Partial<Header> & { name: string; body?: string };

/** A layer tar of `entries` in order (hostile ones included: nothing is checked here). */
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => p.on("end", () => resolve()));
  for (const { body, ...h } of entries) {
    const buf = Buffer.from(body ?? "");
    const type = h.type ?? "file";
    p.entry({ ...h, type, mode: h.mode ?? (type === "directory" ? 0o755 : 0o644), mtime: new Date(0), size: type === "file" ? buf.length : 0 } as Header, type === "file" ? buf : Buffer.alloc(0));
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

const stream = (b: Uint8Array) => ({ stream: (async function* () { yield b; })(), name: "layer.tar" });

describe("unpackImage", () => {
  it("writes the image's rootfs: layers applied bottom-up with whiteouts and opaque directories", async () => {
    const { svc, dir } = await freshService();
    await svc.build({
      layers: [
        stream(gzipSync(await tarOf([{ name: "bin/", type: "directory" }, { name: "bin/sh", body: "shell", mode: 0o755 }, { name: "etc/old", body: "old" }, { name: "var/cache/a", body: "a" }]))),
        stream(await tarOf([{ name: "etc/.wh.old", mode: 0 }, { name: "var/cache/", type: "directory" }, { name: "var/cache/.wh..wh..opq", mode: 0 }, { name: "var/cache/b", body: "b" }, { name: "bin/ash", type: "symlink", linkname: "sh" }]))],
      tags: ["img:1"],
    });
    const out = join(dir, "out/rootfs");
    const res = await svc.unpack("img:1", out);
    expect(res.dir).toBe(out);
    expect(res.layers).toHaveLength(2);
    // 4 + 3 entries created (parents made implicitly are not counted), 2 whiteouts applied
    expect(res.entries).toBe(7);
    expect(res.layers[1]!.result.whiteouts).toBe(2);
    expect((await readdir(out)).sort()).toEqual(["bin", "etc", "var"]);
    expect(await readdir(join(out, "etc"))).toEqual([]);
    expect(await readdir(join(out, "var/cache"))).toEqual(["b"]);
    expect(await readlink(join(out, "bin/ash"))).toBe("sh");
    expect((await stat(join(out, "bin/sh"))).mode & 0o777).toBe(0o755);
    // nothing but the rootfs beside it
    expect(await readdir(join(dir, "out"))).toEqual(["rootfs"]);
  });

  it("refuses a target that is not empty and leaves it alone", async () => {
    const { svc, dir } = await freshService();
    await svc.build({ layers: [stream(await tarOf([{ name: "f", body: "x" }]))], tags: ["img:1"] });
    const out = join(dir, "busy");
    await mkdir(out);
    await writeFile(join(out, "mine"), "keep");
    await expect(svc.unpack("img:1", out)).rejects.toMatchObject({ code: "ERR_TARGET_NOT_EMPTY" });
    expect(await readdir(out)).toEqual(["mine"]);
    expect(await readdir(dir)).toContain("busy");
    expect((await readdir(dir)).filter((n) => n.includes("berth-unpack"))).toEqual([]);
    // an empty directory is fine
    await mkdir(join(dir, "empty"));
    await svc.unpack("img:1", join(dir, "empty"));
    expect(await readFile(join(dir, "empty/f"), "utf8")).toBe("x");
  });

  it("a hostile layer fails the unpack and nothing half-written is visible", async () => {
    const { svc, dir } = await freshService();
    const outside = join(dir, "outside");
    await mkdir(outside);
    await svc.build({
      layers: [
        stream(await tarOf([{ name: "good", body: "g" }, { name: "lnk", type: "symlink", linkname: outside }])),
        stream(await tarOf([{ name: "lnk/pwned", body: "x" }])),
      ],
      tags: ["evil:1"],
    });
    await expect(svc.unpack("evil:1", join(dir, "out"))).rejects.toMatchObject({ code: "ERR_UNSAFE_LINK" });
    expect(await readdir(outside)).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(["outside", "root"]);
  });

  it("an unknown image is not found, and nothing is created", async () => {
    const { svc, dir } = await freshService();
    await expect(svc.unpack("nope:1", join(dir, "out"))).rejects.toMatchObject({ code: "ERR_IMAGE_NOT_FOUND" });
    expect(await readdir(dir)).toEqual(["root"]);
  });

  it("an abort leaves nothing behind", async () => {
    const { svc, dir } = await freshService();
    await svc.build({ layers: [stream(await tarOf([{ name: "f", body: "x" }]))], tags: ["img:1"] });
    const ctl = new AbortController();
    ctl.abort(new Error("stop"));
    await expect(svc.unpack("img:1", join(dir, "out"), { signal: ctl.signal })).rejects.toThrow("stop");
    expect(await readdir(dir)).toEqual(["root"]);
  });
});
