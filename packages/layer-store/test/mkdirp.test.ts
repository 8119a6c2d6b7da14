// mkdirp: one plain mkdir per level. Node 20's `recursive` never returns where
// a parent cannot appear (under /proc) and hides the cause on a read-only root.
import { statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdirp } from "../src/fsutil.js";
import { openLayerStore } from "../src/index.js";
import { tempRoot } from "./helpers.js";

describe("mkdirp", () => {
  let t: Awaited<ReturnType<typeof tempRoot>>;
  beforeEach(async () => {
    t = await tempRoot();
  });
  afterEach(() => t.cleanup());

  it("makes every missing level and accepts a directory that exists", async () => {
    const dir = path.join(t.root, "a", "b", "c");
    await mkdirp(dir);
    expect(statSync(dir).isDirectory()).toBe(true);
    await mkdirp(dir);
    await Promise.all([mkdirp(path.join(dir, "x", "y")), mkdirp(path.join(dir, "x", "z")), mkdirp(path.join(dir, "x", "y"))]);
    expect(statSync(path.join(dir, "x", "z")).isDirectory()).toBe(true);
  });

  it("refuses a file in the way with EEXIST", async () => {
    const file = path.join(t.root, "f");
    writeFileSync(file, "");
    await expect(mkdirp(file)).rejects.toMatchObject({ code: "EEXIST" });
    await expect(mkdirp(path.join(file, "sub"))).rejects.toMatchObject({ code: "ENOTDIR" });
  });

  it("fails at once where a parent cannot be made (a store root under /proc)", async () => {
    await expect(mkdirp("/proc/berth-no-such-dir/store")).rejects.toMatchObject({ code: "ENOENT" });
    await expect(openLayerStore({ root: "/proc/berth-no-such-dir/store" })).rejects.toMatchObject({ code: "ENOENT" });
  });
});
