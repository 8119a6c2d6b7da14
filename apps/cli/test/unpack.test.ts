import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { berth, expectOneErrorLine, tempDir } from "./helpers.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe("berth unpack", () => {
  const root = join(tmp.dir, "root");
  it("writes an image's rootfs into a new directory, with a summary on stderr and nothing on stdout", async () => {
    const src = join(tmp.dir, "src");
    mkdirSync(join(src, "etc"), { recursive: true });
    writeFileSync(join(src, "etc/hello"), "hi\n");
    expect((await berth(["import", src, "u:1"], { root })).code).toBe(0);
    const out = join(tmp.dir, "out");
    const r = await berth(["unpack", "--progress", "plain", "u:1", out], { root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/Unpacked [0-9a-f]{12} into .*out: 1 layer\(s\), 2 entries/);
    expect(readFileSync(join(out, "etc/hello"), "utf8")).toBe("hi\n");
    expect(readdirSync(tmp.dir).filter((n) => n.includes("berth-unpack"))).toEqual([]);
  });

  it("fails with one line and a conflict exit code on a non-empty target, not-found on an unknown image", async () => {
    const busy = join(tmp.dir, "busy");
    mkdirSync(busy);
    writeFileSync(join(busy, "x"), "");
    const r = await berth(["unpack", "u:1", busy], { root });
    expect(r.code).toBe(4);
    expect(expectOneErrorLine(r.stderr)).toContain("exists and is not an empty directory");
    const nf = await berth(["unpack", "nope:1", join(tmp.dir, "nf")], { root });
    expect(nf.code).toBe(3);
    expectOneErrorLine(nf.stderr);
  });

  it("has help, examples and a completion entry", async () => {
    const h = await berth(["unpack", "--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("Usage: berth unpack [options] <image> <dir>");
    const c = await berth(["completion", "bash"]);
    expect(c.stdout).toMatch(/"unpack"\) words="--no-owners --uidmap --gidmap --help"/);
  });
});
