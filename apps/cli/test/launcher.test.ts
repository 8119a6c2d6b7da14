// The bin's compile cache (src/launcher.ts): written once, used after, refused
// and rewritten when it does not fit, off when asked, never in the way.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { berth, berthOk, makeTar, tempDir } from "./helpers.js";

const tmp = tempDir("berth-launcher-");
afterAll(() => tmp.cleanup());

const CACHE_FILE = /^cli-[0-9a-f]{16}\.v8cache$/;

function version(cacheDir: string, env: NodeJS.ProcessEnv = {}) {
  return berth(["--version"], { env: { BERTH_COMPILE_CACHE: cacheDir, BERTH_DEBUG_COMPILE_CACHE: "1", ...env } });
}

describe("the bin's compile cache", () => {
  it("is written by the first run and used by the next; a cache that does not fit is refused and written anew", async () => {
    const dir = join(tmp.dir, "cache");
    const first = await version(dir);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/^berth: compile cache miss \(/);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(CACHE_FILE);
    const file = join(dir, files[0]!);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);

    const second = await version(dir);
    expect(second.stderr).toMatch(/^berth: compile cache hit \(/);
    expect(second.stdout).toBe(first.stdout);

    writeFileSync(file, Buffer.alloc(4096, 7));
    const third = await version(dir);
    expect(third.code).toBe(0);
    expect(third.stderr).toMatch(/^berth: compile cache rejected \(/);
    expect(third.stdout).toBe(first.stdout);
    expect(readFileSync(file).equals(Buffer.alloc(4096, 7))).toBe(false);
    expect((await version(dir)).stderr).toMatch(/^berth: compile cache hit \(/);
  });

  it("runs the bundle from the cache: the DiffID of a gzip'd layer (the bundle's import() of node:zlib)", async () => {
    const dir = join(tmp.dir, "verbs");
    await version(dir);
    const tar = await makeTar([{ name: "hello.txt", content: "hello" }]);
    const r = await berthOk(["digest", "--format", "{{.DiffID}}", "-"], {
      env: { BERTH_COMPILE_CACHE: dir, BERTH_DEBUG_COMPILE_CACHE: "1" },
      input: gzipSync(tar),
    });
    expect(r.stderr).toMatch(/^berth: compile cache hit/);
    expect(r.stdout.trim()).toBe(`sha256:${createHash("sha256").update(tar).digest("hex")}`);
  });

  it("removes cache files of other builds once a week old; a directory it cannot make is no cache; off with BERTH_COMPILE_CACHE=0", async () => {
    const dir = join(tmp.dir, "stale");
    await version(dir);
    const mine = readdirSync(dir)[0]!;
    const old = join(dir, "cli-0123456789abcdef.v8cache");
    const recent = join(dir, "cli-fedcba9876543210.v8cache");
    writeFileSync(old, "x");
    writeFileSync(recent, "x");
    const weekAgo = (Date.now() - 8 * 24 * 3600 * 1000) / 1000;
    utimesSync(old, weekAgo, weekAgo);
    writeFileSync(join(dir, mine), "not a cache"); // rejected, so written again
    expect((await version(dir)).stderr).toMatch(/rejected/);
    expect(readdirSync(dir).sort()).toEqual([mine, "cli-fedcba9876543210.v8cache"].sort());

    // a directory that cannot be made is no cache (under /proc, a recursive mkdir never returned)
    const nowhere = await version("/proc/berth-no-such-dir/cache");
    expect(nowhere.code).toBe(0);
    expect(nowhere.stdout).toMatch(/^\d+\.\d+\.\d+/);

    const off = await version(join(tmp.dir, "off"), { BERTH_COMPILE_CACHE: "0" });
    expect(off.code).toBe(0);
    expect(off.stderr).toMatch(/^berth: compile cache miss \(off\)/);
    expect(() => readdirSync(join(tmp.dir, "off"))).toThrow();
  });
});
