/**
 * A deterministic layer tar of a directory, streamed.
 * @module
 */
import { createReadStream } from "node:fs";
import { InvalidArgumentError } from "@berth/digest";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { pack as tarPack } from "tar-stream";
import { ImageServiceErrorCode } from "./errors.js";

/** Options of {@link directoryLayer}. */
export interface DirectoryLayerOptions {
  /** mtime of every entry, seconds since the epoch (default SOURCE_DATE_EPOCH, else 0). */
  mtime?: number;
  /** Keep the files' uid/gid instead of 0/0. */
  preserveOwner?: boolean;
}

interface Item {
  rel: string;
  abs: string;
}

async function walk(root: string): Promise<Item[]> {
  const out: Item[] = [];
  async function visit(dir: string, rel: string): Promise<void> {
    const names = (await readdir(dir)).sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
    for (const name of names) {
      const abs = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      out.push({ rel: r, abs });
      const st = await lstat(abs);
      if (st.isDirectory()) await visit(abs, r);
    }
  }
  await visit(root, "");
  return out;
}

/** SOURCE_DATE_EPOCH as seconds, or undefined. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === "") return undefined;
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`SOURCE_DATE_EPOCH must be a whole number of seconds, got ${JSON.stringify(v)}`, {
      code: ImageServiceErrorCode.INVALID_SOURCE_DATE_EPOCH,
    });
  return Number(v);
}

/**
 * A deterministic layer tar of a directory, streamed: entries sorted by byte
 * order, fixed mtimes (SOURCE_DATE_EPOCH or 0), uid/gid 0 unless asked,
 * hardlinks stored once (the name that sorts first holds the data, as dockerd
 * writes them), symlinks kept as links. The same tree gives the same bytes,
 * hence the same DiffID, on every machine.
 */
export function directoryLayer(root: string, opts: DirectoryLayerOptions = {}): AsyncIterable<Uint8Array> {
  const mtime = new Date((opts.mtime ?? sourceDateEpoch() ?? 0) * 1000);
  const pack = tarPack();
  (async () => {
    const seen = new Map<string, string>(); // dev:ino → first name
    for (const item of await walk(root)) {
      const st = await lstat(item.abs);
      const owner = opts.preserveOwner ? { uid: st.uid, gid: st.gid } : { uid: 0, gid: 0 };
      const base = { mode: st.mode & 0o7777, mtime, ...owner };
      if (st.isDirectory()) {
        await entry(pack, { ...base, name: `${item.rel}/`, type: "directory" });
      } else if (st.isSymbolicLink()) {
        await entry(pack, { ...base, name: item.rel, type: "symlink", linkname: await readlink(item.abs) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          await entry(pack, { ...base, name: item.rel, type: "link", linkname: first });
          continue;
        }
        if (st.nlink > 1) seen.set(key, item.rel);
        await new Promise<void>((resolve, reject) => {
          const sink = pack.entry({ ...base, name: item.rel, type: "file", size: st.size }, (err) => (err ? reject(err) : resolve()));
          const src = createReadStream(item.abs);
          src.on("error", (err) => {
            sink.destroy(err);
            reject(err);
          });
          src.pipe(sink);
        });
      } else if (st.isFIFO()) {
        await entry(pack, { ...base, name: item.rel, type: "fifo" });
      }
      // sockets and device files are not part of a layer made from a directory
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return pack as AsyncIterable<Uint8Array>;
}

function entry(pack: ReturnType<typeof tarPack>, header: Parameters<ReturnType<typeof tarPack>["entry"]>[0]): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
}
