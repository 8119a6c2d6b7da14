/**
 * A deterministic layer tar of a directory, streamed.
 * @module
 */
import { diffTrees, directoryTree, emptyTree, writeLayer } from "@berth/cache";
import { InvalidArgumentError } from "@berth/digest";
import { ImageServiceErrorCode } from "./errors.js";

/** Options of {@link directoryLayer}. */
export interface DirectoryLayerOptions {
  /** mtime of every entry, seconds since the epoch (default SOURCE_DATE_EPOCH, else 0). */
  mtime?: number;
  /** Keep the files' uid/gid instead of 0/0. */
  preserveOwner?: boolean;
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
 * hence the same DiffID, on every machine. It is `@berth/cache`'s layer
 * writer over the directory diffed against nothing (every path added);
 * sockets and device files are left out.
 */
export function directoryLayer(root: string, opts: DirectoryLayerOptions = {}): AsyncIterable<Uint8Array> {
  const mtime = opts.mtime ?? sourceDateEpoch() ?? 0;
  const tree = directoryTree(root);
  async function* changes() {
    yield* await diffTrees(emptyTree(), tree);
  }
  return writeLayer(tree, changes(), { mtime, devices: false, ...(opts.preserveOwner ? {} : { owner: { uid: 0, gid: 0 } }) });
}
