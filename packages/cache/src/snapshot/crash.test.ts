import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { listTree } from "../../test/snapshot-util.js";
import { openSnapshotter } from "./snapshotter.js";

const here = fileURLToPath(new URL(".", import.meta.url));
// the layer store's TypeScript loader hooks let a child run the sources on Node 20
const hooks = join(here, "../../../layer-store/test/register-ts.mjs");
const worker = join(here, "../../test/workers/snapshot-crash.ts");
const TRIALS = Number(process.env.BERTH_CRASH_TRIALS ?? 20);

function run(root: string, name: string): { child: ChildProcess; lines: string[]; exited: Promise<NodeJS.Signals | null> } {
  const child = spawn(process.execPath, ["--conditions=source", "--import", hooks, worker, root, name], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let buf = "";
  child.stdout!.on("data", (c: Buffer) => {
    buf += c.toString();
    const parts = buf.split("\n");
    buf = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.on("data", (c: Buffer) => process.stderr.write(c));
  return { child, lines, exited: new Promise((resolve) => child.on("exit", (_code, signal) => resolve(signal))) };
}

describe("snapshotter crash safety (SIGKILL while preparing, applying, committing)", () => {
  it(`after ${TRIALS} kills only garbage is left, and cleanup removes all of it`, { timeout: 60_000 + TRIALS * 30_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), "berth-snap-crash-"));
    try {
      const snaps = await openSnapshotter({ root });
      const base = await snaps.prepare("work");
      for (let i = 0; i < 200; i++) await writeFile(join(base, `big-${i}`), Buffer.alloc(20_000, i));
      await snaps.commit("base", "work");
      const baseList = await listTree(base);
      let committed = 0;
      let leftGarbage = 0; // kills inside a prepare or a commit: cleanup had something to remove
      for (let t = 0; t < TRIALS; t++) {
        const w = run(root, `w${t}`);
        for (let waited = 0; !w.lines.includes("ready") && waited < 60_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
        for (let waited = 0; w.lines.length < 2 && waited < 60_000; waited += 5) await new Promise((r) => setTimeout(r, 5));
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
        w.child.kill("SIGKILL");
        expect(await w.exited).toBe("SIGKILL");
        committed += w.lines.filter((l) => l.startsWith("committed")).length;

        const after = await openSnapshotter({ root });
        const { removed } = await after.cleanup();
        if (removed.length > 0) leftGarbage++;
        if (process.env.BERTH_KILL_DEBUG) console.log(`snapshot trial ${t}: last step "${w.lines.at(-1)}", cleanup removed ${removed.length}`);
        const records = await after.walk();
        // every record names a tree, every tree is named, nothing is left in tmp/
        const ids = new Set(records.map((r) => r.id));
        expect(new Set(await readdir(after.path("fs")))).toEqual(ids);
        expect(await readdir(after.path("tmp"))).toEqual([]);
        for (const r of records) {
          const tree = await listTree(after.treeOf(r));
          if (r.key === "base") expect(tree).toEqual(baseList);
          else if (r.kind === "committed") {
            // a committed child is the base with the layer applied, whole
            expect(tree.length).toBe(baseList.length + 1);
            expect(await readFile(join(after.treeOf(r), "etc/hostname"), "utf8")).toBe(r.key.split("-")[0]);
          }
        }
        // what a killed worker prepared but did not commit is still a prepared (removable) snapshot
        for (const r of records.filter((x) => x.kind === "active")) await after.remove(r.key);
      }
      expect(committed).toBeGreaterThan(0);
      // the kill points reach into the operations, not only between them
      expect(leftGarbage).toBeGreaterThan(0);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
