// Run without root by the rootless test: applies the layer tar LAYER onto the
// empty directory DIR with the defaults (owners not kept, recorded in
// user.rootlesscontainers), then reads DIR back as a commit would
// (directoryTree's defaults) and prints one JSON line: the apply result and
// each path's uid:gid and mode.
// Usage: rootless-apply.ts DIR LAYER
import { readFile } from "node:fs/promises";
import { applyLayer, directoryTree, type Tree } from "../../src/index.js";

const [dir, layer] = process.argv.slice(2) as [string, string];
const result = await applyLayer(dir, [await readFile(layer)]);
const tree = directoryTree(dir);
const entries: Record<string, string> = {};
async function walk(t: Tree, path: string): Promise<void> {
  for (const [name, e] of (await t.readDir(path)) ?? []) {
    const p = path ? `${path}/${name}` : name;
    entries[p] = `${e.uid}:${e.gid} ${e.mode.toString(8)}`;
    if (e.type === "dir") await walk(t, p);
  }
}
await walk(tree, "");
process.stdout.write(`${JSON.stringify({ uid: process.getuid?.(), result, entries })}\n`);
