// A stream from open, openUncompressed or content.open closes its blob file
// when it is destroyed, read or not (a leaked FileHandle is closed only by the
// garbage collector, with a DEP0137 warning). Linux: the open files are the
// links in /proc/self/fd.
import { once } from "node:events";
import { readdirSync, readlinkSync } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tarFor } from "../src/fixtures.js";
import { type FsLayerStore, openLayerStore } from "../src/index.js";
import { gz, tempRoot } from "./helpers.js";

/** Descriptors of this process open on `file`. */
function fdsOn(file: string): string[] {
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false; // closed while listed
    }
  });
}

/** Wait (up to 5 s: closing runs on the thread pool) until nothing has `file` open; the descriptors left. */
async function closedWithin(file: string): Promise<string[]> {
  const deadline = Date.now() + 5000;
  while (fdsOn(file).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return fdsOn(file);
}

let t: Awaited<ReturnType<typeof tempRoot>>;
let store: FsLayerStore;
beforeEach(async () => {
  t = await tempRoot();
  store = await openLayerStore({ root: t.root });
});
afterEach(async () => {
  await t.cleanup();
});

type Opener = (s: FsLayerStore, chainID: string, blob: string) => Promise<Readable>;
const openers: Array<[string, Opener]> = [
  ["openUncompressed", (s, id) => s.openUncompressed(id)],
  ["open", (s, id) => s.open(id)],
  ["content.open", (s, _id, blob) => s.content.open(blob)],
];

describe.each(openers)("%s", (_name, openStream) => {
  it.each([
    ["a tar, destroyed before it is read", false, false],
    ["a gzip'd tar, destroyed before it is read", true, false],
    ["a tar, destroyed after its first chunk", false, true],
    ["a gzip'd tar, destroyed after its first chunk", true, true],
  ])("%s: its blob file is closed", async (_what, gzip, readOne) => {
    // several chunks of 512 KiB: a first read leaves the file half read
    const tar = tarFor(3, 3 << 20);
    const layer = await store.register([gzip ? gz(tar) : tar]);
    const blobFile = path.join(t.root, "blobs", "sha256", layer.blob.digest.slice("sha256:".length));
    const stream = await openStream(store, layer.chainID, layer.blob.digest);
    expect(fdsOn(blobFile)).toHaveLength(1);
    if (readOne) await once(stream, "data");
    stream.destroy();
    expect(await closedWithin(blobFile)).toEqual([]);
  });
});
