import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Store, openStore } from "@berth/image-store";
import { makeTar } from "@berth/image-store/tar-fixture";
import { afterEach } from "vitest";
import { ImageService } from "../src/index.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A fresh store and service in a temp dir, closed and removed after the test. */
export async function freshService(): Promise<{ svc: ImageService; store: Store; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "berth-svc-"));
  const store = await openStore({ root: join(dir, "root") });
  cleanups.push(async () => {
    await store.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });
  return { svc: new ImageService(store), store, dir };
}

/** A directory with the given files (paths relative to it). */
export async function makeDir(parent: string, name: string, files: Record<string, string>): Promise<string> {
  const root = join(parent, name);
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(join(root, rel, ".."), { recursive: true });
    await writeFile(join(root, rel), text);
  }
  return root;
}

/** A layer tar with the given files, as a one-chunk stream. */
export function tarStream(files: Record<string, string>): AsyncIterable<Uint8Array> {
  const bytes = makeTar(files);
  return (async function* () {
    yield bytes;
  })();
}

/** The store's blob bytes. */
export async function blobCount(store: Store): Promise<number> {
  let n = 0;
  for await (const _ of store.content.list()) n++;
  return n;
}
