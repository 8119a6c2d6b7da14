/**
 * Resumable layer downloads. Each layer blob a pull fetches is kept as a
 * partial-download file, `<root>/cache/registry/partial/<hex>`, until the
 * image is in the store. A download from the start keeps the ingest's own
 * file under that name (a hard link, made before the first byte: the store's
 * write worker writes a blob in order, so the file is a prefix of the blob
 * whenever the pull stops), so every byte is written once; where no link can
 * be made (or the ingest is not a file written in order), the bytes are
 * copied into the partial file as they arrive, before the ingest sees them.
 * When a pull is killed or fails, the files stay: the next pull of a blob
 * reads its file back into the ingest first, then asks the registry only for
 * the rest (`Range`; nothing for a blob that was whole), appending to the
 * file. A partial file with other links (the store's blob, once committed;
 * a killed pull's ingest, until the store clears it) is never written
 * through: a resume that appends gives it a copy of its own first, and one
 * longer than the blob is unlinked, not truncated. The ingest verifies the
 * whole blob by digest, size and DiffID as ever: a partial file that does
 * not lead to the right content is removed, and the pull fails as a pull of
 * bad content does (the next one starts from zero).
 *
 * One pull at a time per blob holds the file (a lock under the directory);
 * another waits for it. Partial files untouched for a day are removed by the
 * next pull (the state of downloads nobody resumed), as containerd expires
 * its ingests.
 * @module
 */
import { constants, createReadStream } from "node:fs";
import { copyFile, link, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
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
  /** The blob's bytes: the partial file's, then `fetch(resumedFrom)`'s, which are appended to it as they pass (unless {@link keep} linked it). */
  chunks: AsyncIterable<Uint8Array>;
  /**
   * Give as the ingest's `onIngestFile`: a download from the start keeps the
   * ingest's file as the partial file (a hard link) instead of a copy. Does
   * nothing for a resumed download or where no link can be made.
   */
  keep(ingestPath: string): Promise<void>;
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
  const linking = `${file}.link`;
  return withLock(dir, hex, async () => {
    await sweep(dir, hex);
    await rm(linking, { force: true }); // a pull killed between its link and its rename
    const st = await stat(file).catch(() => undefined);
    let have = st?.size ?? 0;
    if (have > desc.size) {
      await rm(file, { force: true });
      have = 0;
    } else if (st && st.nlink > 1 && have > 0 && have < desc.size) {
      // to be appended to: first a file of its own (see the module doc)
      await copyFile(file, linking, constants.COPYFILE_FICLONE);
      await rename(linking, file);
    }
    let linked = false;
    const keep = async (ingestPath: string) => {
      if (have > 0) return;
      try {
        await link(ingestPath, linking);
        await rename(linking, file);
        linked = true;
      } catch {
        await rm(linking, { force: true }).catch(() => {});
      }
    };
    const chunks = (async function* () {
      if (have > 0) yield* createReadStream(file, { end: have - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>;
      if (have === desc.size) return;
      // Copying: the copy is written beside the pull, not before it: a chunk goes on while
      // earlier writes are in flight. They run one after another, so what a killed pull leaves
      // is a prefix.
      let fh: Awaited<ReturnType<typeof open>> | undefined;
      let tail = Promise.resolve();
      let queued = 0;
      const copy = async (chunk: Uint8Array) => {
        const out = (fh ??= await open(file, "a"));
        queued += chunk.length;
        tail = tail.then(async () => {
          await out.appendFile(chunk);
          queued -= chunk.length;
        });
        tail.catch(() => {});
        if (queued > PARTIAL_IN_FLIGHT) await tail;
      };
      // A download from the start copies or not once the ingest asks for its second chunk: the
      // first is taken when the ingest claims its source, before its file exists and `keep` can
      // link it; the second only after `keep` (the ingest awaits it before it reads on).
      let copying = have > 0 ? true : undefined;
      let first: Uint8Array | undefined;
      try {
        for await (const chunk of fetch(have)) {
          if (copying === undefined) {
            if (first === undefined) {
              first = chunk;
              yield chunk;
              continue;
            }
            copying = !linked;
            if (copying) await copy(first);
          }
          if (copying) await copy(chunk);
          yield chunk;
        }
        if (copying === undefined && first && !linked) await copy(first); // a blob of one chunk
      } finally {
        await tail.finally(() => fh?.close());
      }
    })();
    try {
      return await fn({ resumedFrom: have, chunks, keep });
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
    if (name.startsWith(keep) || !/^[0-9a-f]{64}(\.link)?$/.test(name)) continue;
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st && now - st.mtimeMs > PARTIAL_MAX_AGE_MS) await rm(join(dir, name), { force: true });
  }
}
