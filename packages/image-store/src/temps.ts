/**
 * Stale-temp cleanup: temporary files `writeFileAtomic` left behind in the
 * image metadata directory by processes that died mid-write.
 * @module
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { isOwnerAlive, parseOwnerToken, TEMP_SUFFIX } from "@berth/layer-store";

/** Remove the `*.berth-tmp` files of dead processes in `dir`; returns their paths. @internal */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.endsWith(TEMP_SUFFIX)) continue;
    // writeFileAtomic names temps `<file>.<pid>[-<start>].<random>.berth-tmp`.
    const m = /\.(\d+(?:-[\d-]+)?)\.[0-9a-f]+\.berth-tmp$/.exec(name);
    // the layer store's owner check (pid and start time: a reused pid is not the writer)
    const owner = m ? parseOwnerToken(m[1]!.includes("-") ? m[1]! : `${m[1]}--`) : undefined;
    if (owner && isOwnerAlive(owner)) continue;
    await fsp.rm(path.join(dir, name), { force: true });
    removed.push(path.join(dir, name));
  }
  return removed;
}
