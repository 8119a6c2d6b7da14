/**
 * `exportCache` without a registry: a memory store (no file system of its
 * own) exports a build tool's keys into an OCI layout directory, which the
 * layout importer reads back; nothing is written beside the layout (a memory
 * store's blob-info cache lives for the call, not in a `memory:` directory).
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@berth/digest";
import { makeTar } from "@berth/image-store/tar-fixture";
import { openMemoryStore } from "@berth/image-store";
import { afterEach, describe, expect, it } from "vitest";
import { ImageService, exportCache, withCacheSource } from "../src/index.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("exportCache from a memory store", () => {
  it("writes an OCI layout the importer reads back; leaves no memory: directory behind", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-cache-export-"));
    dirs.push(dir);
    const svc = new ImageService(await openMemoryStore());
    const built = await svc.import(
      (async function* () {
        yield makeTar({ "hello.txt": "hi\n" });
      })(),
    );
    const chainID = built.layers[0]!.chainID;
    const key = sha256("memory-store-key");
    const cwd = process.cwd();
    const dest = join(dir, "layout");
    const r = await exportCache(svc.store, [{ key, chainID }], dest);
    expect(r.destination).toBe(`oci:${dest}:latest`);
    expect(r.records).toBe(1);
    expect(r.results).toBe(1);
    expect(existsSync(join(cwd, "memory:"))).toBe(false);
    const other = new ImageService(await openMemoryStore());
    await withCacheSource(other.store, dest, {}, async (imp) => {
      expect((await imp.lookup(key))?.chainID).toBe(chainID);
    });
    await svc.close();
    await other.close();
  });
});
