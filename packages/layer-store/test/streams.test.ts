// register and ingestLayer read every byte of a stream whatever its timing:
// a child process that exited before they read (Node drains such a stdout into
// nothing), a socket whose peer sent everything, a stream that ended at once.
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { PassThrough } from "node:stream";
import { sha256 } from "@berth/digest";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tarFor } from "../src/fixtures.js";
import { createMemoryLayerStore, type LayerStore, LayerStoreErrorCode, openLayerStore } from "../src/index.js";
import { claimSource } from "../src/source.js";
import { exitedChildStdout, socketStream } from "../src/stream-fixtures.js";
import { tempRoot } from "./helpers.js";

const stores: Array<[string, (root: string) => Promise<LayerStore>]> = [
  ["filesystem", (root) => openLayerStore({ root: path.join(root, "store") })],
  ["memory", async () => createMemoryLayerStore()],
];

describe.each(stores)("%s store: a stream's timing loses no byte", (_name, open) => {
  let t: Awaited<ReturnType<typeof tempRoot>>;
  let store: LayerStore;
  const tar = tarFor(7, 3000);
  let tarFile: string;

  beforeEach(async () => {
    t = await tempRoot();
    store = await open(t.root);
    tarFile = path.join(t.root, "layer.tar");
    await writeFile(tarFile, tar);
  });
  afterEach(async () => {
    await store.close();
    await t.cleanup();
  });

  it("register on a parent: the stdout of `cat` that exited before the parent check", async () => {
    const base = await store.register([tarFor(1, 100)]);
    const layer = await store.register(exitedChildStdout("cat", [tarFile]), base.chainID);
    expect(layer.diffID).toBe(sha256(tar));
    expect(layer.size).toBe(tar.length);
    expect(layer.parent).toBe(base.chainID);
  });

  it("register: the stdout of a `tar` child", async () => {
    const dir = path.join(t.root, "rootfs");
    await mkdir(dir);
    await writeFile(path.join(dir, "hello.txt"), "hello from a child\n");
    const args = ["-cf", "-", "-C", dir, "hello.txt"];
    const expected = execFileSync("tar", args);
    const layer = await store.register(exitedChildStdout("tar", args));
    expect(layer.diffID).toBe(sha256(expected));
    expect(layer.size).toBe(expected.length);
  });

  it("ingestLayer: the stdout of `cat` that exited before the lease check", async () => {
    const lease = await store.lease();
    try {
      const facts = await store.ingestLayer(exitedChildStdout("cat", [tarFile]), { lease });
      expect(facts.diffID).toBe(sha256(tar));
      expect(facts.blob.size).toBe(tar.length);
    } finally {
      await lease.release();
    }
  });

  it("register: a socket whose peer sent everything and ended", async () => {
    const layer = await store.register(await socketStream(tar));
    expect(layer.diffID).toBe(sha256(tar));
  });

  it("register: streams that ended at once, small and empty", async () => {
    const small = new PassThrough();
    small.end(tar);
    expect((await store.register(small)).diffID).toBe(sha256(tar));
    const empty = new PassThrough();
    empty.end();
    const none = await store.register(empty);
    expect([none.diffID, none.size]).toEqual([sha256(new Uint8Array(0)), 0]);
    const silent = await store.register(exitedChildStdout("true", []));
    expect([silent.diffID, silent.size]).toEqual([sha256(new Uint8Array(0)), 0]);
  });

  it("register that fails before reading stops the stream it took", async () => {
    const stdout = exitedChildStdout("cat", [tarFile]);
    const missing = sha256(new TextEncoder().encode("no such parent"));
    await expect(store.register(stdout, missing)).rejects.toMatchObject({ code: LayerStoreErrorCode.LAYER_NOT_FOUND });
    expect(stdout.destroyed).toBe(true);
  });
});

describe("claimSource", () => {
  it("is read once: a second iteration is ERR_SOURCE_ALREADY_READ, not an empty stream", async () => {
    const src = claimSource([new Uint8Array([1, 2, 3])]);
    const got: number[] = [];
    for await (const c of src) got.push(...c);
    expect(got).toEqual([1, 2, 3]);
    await expect(async () => {
      for await (const _ of src) expect.unreachable();
    }).rejects.toMatchObject({ code: LayerStoreErrorCode.SOURCE_ALREADY_READ });
    expect(claimSource(src)).toBe(src);
  });
});
