// load reads every byte of a stream whatever its timing: a child process that
// exited before load read (Node drains such a stdout into nothing), a socket
// whose peer sent everything, a stream that ended at once.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { gzipSync } from "node:zlib";
import { exitedChildStdout, socketStream } from "@berth/layer-store/testsuite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { load } from "../src/index.js";
import { imageOf, layerTar, legacyEntries, tarOf, tempStore } from "./helpers.js";

let t: Awaited<ReturnType<typeof tempStore>>;
let archive: Uint8Array;
let id: string;
beforeEach(async () => {
  t = await tempStore();
  // small enough to fit in a pipe: `cat` exits before anyone reads
  const img = imageOf([await layerTar({ "a.txt": "first layer\n" }), await layerTar({ "b.txt": "second layer\n" })]);
  archive = await tarOf(legacyEntries([{ img, tags: ["example/app:1"] }]));
  id = img.id;
});
afterEach(async () => {
  await t.cleanup();
});

/** `archive` as a file under the store's temp dir. */
function archiveFile(bytes: Uint8Array, name: string): string {
  const file = join(t.root, name);
  writeFileSync(file, bytes);
  return file;
}

describe("load from a stream with its own timing", () => {
  it("the stdout of `cat` that exited before load read it, plain and gzip'd", async () => {
    const r = await load(t.store, exitedChildStdout("cat", [archiveFile(archive, "a.tar")]));
    expect([r.format, r.bytesRead, r.images[0]?.id]).toEqual(["docker", archive.length, id]);
    const gz = gzipSync(archive);
    const z = await load(t.store, exitedChildStdout("cat", [archiveFile(gz, "a.tar.gz")]));
    expect([z.compression, z.bytesRead, z.images[0]?.id]).toEqual(["gzip", gz.length, id]);
    expect(await t.store.references.resolve("example/app:1")).toBe(id);
  });

  it("a socket whose peer sent everything and ended", async () => {
    const r = await load(t.store, await socketStream(archive));
    expect([r.bytesRead, r.images[0]?.id]).toEqual([archive.length, id]);
  });

  it("a stream that ended at once; an empty one is ERR_TRUNCATED, not an unknown format", async () => {
    const full = new PassThrough();
    full.end(archive);
    expect((await load(t.store, full)).images[0]?.id).toBe(id);
    const empty = new PassThrough();
    empty.end();
    await expect(load(t.store, empty)).rejects.toMatchObject({ code: "ERR_TRUNCATED", message: expect.stringMatching(/empty/) });
    await expect(load(t.store, exitedChildStdout("true", []))).rejects.toMatchObject({ code: "ERR_TRUNCATED" });
  });
});
