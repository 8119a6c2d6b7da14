import { promises as fsp } from "node:fs";
import path from "node:path";
import { hasCode } from "@berth/digest";
import { afterEach, describe, expect, it } from "vitest";
import { ownerToken, TEMP_SUFFIX, withLock, writeFileAtomic } from "../src/index.js";
import { spawnWorker, watch } from "./child.js";
import { tempRoot } from "./helpers.js";

describe("withLock", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it("serialises holders in one process", async () => {
    const t = await tempRoot();
    cleanup = t.cleanup;
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        withLock(t.root, "x", async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await new Promise((r) => setTimeout(r, 2));
          order.push(i);
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect(order).toHaveLength(10);
    // A failing fn releases the lock.
    await expect(withLock(t.root, "x", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await withLock(t.root, "x", async () => 42)).toBe(42);
  });

  it("excludes other processes and takes over at once when the holder is killed", async () => {
    const t = await tempRoot();
    cleanup = t.cleanup;
    const child = spawnWorker("lock-holder.ts", [t.root, "y"]);
    const w = watch(child);
    await w.waitFor("locked");
    const err = await withLock(t.root, "y", async () => "got it", { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(hasCode(err, "ERR_LOCK_TIMEOUT"), String(err)).toBe(true);
    child.kill("SIGKILL");
    await w.exited;
    // The lock has an owner file, so only the pid check can break it (staleness applies to ownerless locks).
    expect(await withLock(t.root, "y", async () => "got it", { timeoutMs: 20_000 })).toBe("got it");
  });

  it("breaks an ownerless lock by proper-lockfile's staleness rule", async () => {
    const t = await tempRoot();
    cleanup = t.cleanup;
    const dir = path.join(t.root, "locks", "z.lock");
    await fsp.mkdir(dir, { recursive: true });
    const old = new Date(Date.now() - 60_000);
    await fsp.utimes(dir, old, old);
    expect(await withLock(t.root, "z", async () => 1, { timeoutMs: 5_000 })).toBe(1);
  });

  it("breaks an ownerless lock within seconds when its maker is gone, and waits while a live process is making it", async () => {
    const t = await tempRoot();
    cleanup = t.cleanup;
    const locks = path.join(t.root, "locks");
    const made = async (name: string, intentOwner: string) => {
      // as a maker leaves it when killed between its mkdir and its owner file: the lock and its intent
      await fsp.mkdir(path.join(locks, `${name}.lock`), { recursive: true });
      await fsp.writeFile(path.join(locks, `${name}.intent.${intentOwner}.0a1b2c${TEMP_SUFFIX}`), "");
      const a_while_ago = new Date(Date.now() - 1_500);
      await fsp.utimes(path.join(locks, `${name}.lock`), a_while_ago, a_while_ago);
    };
    // a dead maker (a pid no process has): broken at once, its intent removed
    await made("dead", "2147483646-1");
    const start = Date.now();
    expect(await withLock(t.root, "dead", async () => 1, { timeoutMs: 5_000 })).toBe(1);
    expect(Date.now() - start).toBeLessThan(5_000);
    expect((await fsp.readdir(locks)).filter((f) => f.startsWith("dead.intent."))).toEqual([]);
    // a live one (this process, under another name): not broken before the 10 s staleness
    await made("live", ownerToken());
    const err = await withLock(t.root, "live", async () => 1, { timeoutMs: 2_500 }).catch((e: unknown) => e);
    expect(hasCode(err, "ERR_LOCK_TIMEOUT"), String(err)).toBe(true);
  });

  it("refuses lock names that are not plain names", async () => {
    for (const bad of ["../x", "a/b", "", ".hidden"]) {
      const err = await withLock("/tmp", bad, async () => 1).catch((e: unknown) => e);
      expect(hasCode(err, "ERR_INVALID_LOCK_NAME")).toBe(true);
    }
  });
});

describe("writeFileAtomic", () => {
  it("replaces the content and leaves no temporary file", async () => {
    const t = await tempRoot();
    try {
      const f = path.join(t.root, "index.json");
      await writeFileAtomic(f, "one");
      await writeFileAtomic(f, new TextEncoder().encode("two"));
      expect(await fsp.readFile(f, "utf8")).toBe("two");
      expect((await fsp.readdir(t.root)).filter((n) => n.endsWith(TEMP_SUFFIX))).toEqual([]);
      await expect(writeFileAtomic(path.join(t.root, "missing", "x"), "y")).rejects.toMatchObject({ code: "ENOENT" });
      expect(await fsp.readdir(t.root)).toEqual(["index.json"]);
    } finally {
      await t.cleanup();
    }
  });
});
