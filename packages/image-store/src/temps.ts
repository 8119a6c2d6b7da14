/**
 * Stale-temp cleanup: temporary files `writeFileAtomic` left behind in the
 * image metadata directory by processes that died mid-write.
 * @module
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { TEMP_SUFFIX } from "@berth/layer-store";

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
    const m = /\.(\d+)(?:-[\d-]+)?\.[0-9a-f]+\.berth-tmp$/.exec(name);
    const pid = m ? Number(m[1]) : Number.NaN;
    let alive = false;
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === "EPERM";
      }
    }
    if (alive && pid !== process.pid) continue;
    if (alive && pid === process.pid) continue;
    await fsp.rm(path.join(dir, name), { force: true });
    removed.push(path.join(dir, name));
  }
  return removed;
}
