/**
 * Resumable layer downloads. A pull copies each layer blob it fetches into a
 * partial-download file, `<root>/cache/registry/partial/<hex>`, as the bytes
 * arrive (before the ingest sees them), and removes the files when the image
 * is in the store. When a pull is killed or fails, they stay: the next pull of
 * a blob reads its file back into the ingest first, then asks the registry
 * only for the rest (`Range`; nothing for a blob that was whole), appending to
 * the file as before. The ingest
 * verifies the whole blob by digest, size and DiffID as ever: a partial file
 * that does not lead to the right content is removed, and the pull fails as a
 * pull of bad content does (the next one starts from zero).
 *
 * One pull at a time per blob holds the file (a lock under the directory);
 * another waits for it. Partial files untouched for a day are removed by the
 * next pull (the state of downloads nobody resumed), as containerd expires
 * its ingests.
 * @module
 */
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rm, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { DataIntegrityError, type Digest, digestHex } from "@berth/digest";
import { withLock } from "@berth/layer-store";

/** Where partial downloads live, under the store root. */
export const PARTIAL_DIR = join("cache", "registry", "partial");
/** Partial downloads untouched this long are removed by the next pull. */
export const PARTIAL_MAX_AGE_MS = 24 * 3600_000;
/** Bytes of partial-file writes a download lets be in flight. */
const PARTIAL_IN_FLIGHT = 8 << 20;

/** The partial-download state of one blob, while a pull holds it. */
export interface PartialDownload {
  /** Bytes already there, read back first. */
  resumedFrom: number;
  /** The blob's bytes: the partial file's, then `fetch(resumedFrom)`'s, which are appended to it as they pass. */
  chunks: AsyncIterable<Uint8Array>;
}

/**
 * Run `fn` with the blob's bytes as {@link PartialDownload} describes. The
 * file stays for the next pull (the caller removes it with
 * {@link removePartialDownloads} once the image is stored) unless the content
 * did not verify (a DataIntegrityError: digest, size, DiffID, not a tar, bad
 * compression): then it goes.
 */
export async function withPartialDownload<T>(
  root: string,
  desc: { digest: Digest; size: number },
  fetch: (offset: number) => AsyncIterable<Uint8Array>,
  fn: (download: PartialDownload) => Promise<T>,
): Promise<T> {
  const dir = join(root, PARTIAL_DIR);
  await mkdir(dir, { recursive: true });
  const hex = digestHex(desc.digest);
  const file = join(dir, hex);
  return withLock(dir, hex, async () => {
    await sweep(dir, hex);
    let have = (await stat(file).catch(() => undefined))?.size ?? 0;
    if (have > desc.size) {
      await truncate(file, 0);
      have = 0;
    }
    const chunks = (async function* () {
      if (have > 0) yield* createReadStream(file, { end: have - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>;
      if (have === desc.size) return;
      // The copy is written beside the pull, not before it: a chunk goes on while earlier writes
      // are in flight. They run one after another, so what a killed pull leaves is a prefix.
      const fh = await open(file, "a");
      let tail = Promise.resolve();
      let queued = 0;
      try {
        for await (const chunk of fetch(have)) {
          queued += chunk.length;
          tail = tail.then(async () => {
            await fh.appendFile(chunk);
            queued -= chunk.length;
          });
          tail.catch(() => {});
          if (queued > PARTIAL_IN_FLIGHT) await tail;
          yield chunk;
        }
      } finally {
        await tail.finally(() => fh.close());
      }
    })();
    try {
      return await fn({ resumedFrom: have, chunks });
    } catch (err) {
      if (err instanceof DataIntegrityError) await rm(file, { force: true });
      throw err;
    }
  });
}

/** Remove the partial downloads of `digests` (their image is stored). */
export async function removePartialDownloads(root: string, digests: Iterable<Digest>): Promise<void> {
  for (const d of digests) await rm(join(root, PARTIAL_DIR, digestHex(d)), { force: true });
}

/** Remove partial files older than {@link PARTIAL_MAX_AGE_MS} (not `keep`, nor one another pull holds: it touches it). */
async function sweep(dir: string, keep: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name === keep || !/^[0-9a-f]{64}$/.test(name)) continue;
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st && now - st.mtimeMs > PARTIAL_MAX_AGE_MS) await rm(join(dir, name), { force: true });
  }
}
