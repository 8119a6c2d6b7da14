/**
 * kill -9 at random moments of the CLI's writing operations (issue 17): load,
 * import, save -o, tag, rmi and image prune. Each trial copies a prepared
 * store, starts the operation, kills it with SIGKILL at a random point of its
 * measured duration, and checks: the store opens, fsck finds no damage, every
 * image committed before is intact, `save -o` left no half-written archive,
 * and the next ordinary write leaves no garbage at all.
 *
 * BERTH_KILL_TRIALS per operation (default 20; 200 for the long run),
 * BERTH_KILL_SEED to replay a reported seed (RELIABILITY.md).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BERTH, berthOk, makeRootfs, tempDir } from "./helpers.js";

const TRIALS = Number(process.env.BERTH_KILL_TRIALS ?? 20);
const SEED = Number(process.env.BERTH_KILL_SEED ?? Date.now() % 2 ** 31);
const PARALLEL = 3;

/** mulberry32: a small seeded PRNG, so a failing trial can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const tmp = tempDir("berth-kill-");
const template = join(tmp.dir, "template");
const archive = join(tmp.dir, "app.tar");
const bigDir = join(tmp.dir, "big");
const smallDir = join(tmp.dir, "small");
afterAll(() => tmp.cleanup());

beforeAll(async () => {
  // base:1 (busybox rootfs) and victim:1 (two 3 MB layers), plus app.tar (three 3 MB layers) to load
  mkdirSync(bigDir);
  mkdirSync(smallDir);
  writeFileSync(join(smallDir, "after.txt"), "written after the kill\n");
  writeFileSync(join(bigDir, "a.bin"), randomBytes(3_000_000));
  await berthOk(["import", "-q", makeRootfs(join(tmp.dir, "rootfs")), "base:1"], { root: template });
  const elsewhere = join(tmp.dir, "elsewhere");
  await berthOk(["import", "-q", bigDir, "--base", "base:1", "victim:0"], { root: template });
  writeFileSync(join(bigDir, "b.bin"), randomBytes(3_000_000));
  await berthOk(["import", "-q", bigDir, "--base", "victim:0", "victim:1"], { root: template });
  await berthOk(["rmi", "victim:0"], { root: template });
  await berthOk(["import", "-q", bigDir, "app:0"], { root: elsewhere });
  writeFileSync(join(bigDir, "c.bin"), randomBytes(3_000_000));
  await berthOk(["import", "-q", bigDir, "--base", "app:0", "app:1"], { root: elsewhere });
  await berthOk(["save", "-q", "-o", archive, "app:1"], { root: elsewhere });
}, 120_000);

interface Op {
  name: string;
  args(trial: string): string[];
  /** Images (by tag) that must survive the operation whatever moment it dies. */
  keeps: string[];
}
const OPS: Op[] = [
  { name: "load -i", args: () => ["load", "-q", "-i", archive], keeps: ["base:1", "victim:1"] },
  { name: "import", args: (t) => ["import", "-q", bigDir, `imported:${t}`], keeps: ["base:1", "victim:1"] },
  { name: "save -o", args: (t) => ["save", "-q", "-o", join(tmp.dir, `out-${t}.tar`), "base:1", "victim:1"], keeps: ["base:1", "victim:1"] },
  { name: "tag", args: (t) => ["tag", "victim:1", `tagged:${t}`], keeps: ["base:1", "victim:1"] },
  { name: "rmi", args: () => ["rmi", "victim:1"], keeps: ["base:1"] },
  { name: "image prune -a", args: () => ["image", "prune", "-a", "-f"], keeps: [] },
];

function start(root: string, args: string[]): { child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null }> } {
  const child = spawn(process.execPath, [BERTH, ...args], { env: { ...process.env, BERTH_ROOT: root }, stdio: "ignore" });
  return { child, exited: new Promise((r) => child.once("exit", (code, signal) => r({ code, signal }))) };
}

async function timeOf(op: Op): Promise<number> {
  const root = join(tmp.dir, `measure-${op.name.replace(/\W/g, "")}`);
  execFileSync("cp", ["-a", template, root]);
  const t = performance.now();
  const { exited } = start(root, op.args("measure"));
  const e = await exited;
  expect(e.code, `${op.name} without a kill`).toBe(0);
  return performance.now() - t;
}

async function trial(op: Op, n: number, duration: number, random: () => number): Promise<boolean> {
  const id = `${op.name.replace(/\W/g, "")}-${n}`;
  const root = join(tmp.dir, `t-${id}`);
  execFileSync("cp", ["-a", template, root]);
  const before = new Map<string, string>();
  for (const tag of op.keeps) before.set(tag, (await berthOk(["images", "-q", "--no-trunc", tag], { root })).stdout.trim());
  const at = random() * duration * 1.1;
  const { child, exited } = start(root, op.args(String(n)));
  const timer = setTimeout(() => child.kill("SIGKILL"), at);
  const e = await exited;
  clearTimeout(timer);
  const killed = e.signal === "SIGKILL";
  const where = `${op.name} trial ${n} (seed ${SEED}, kill at ${at.toFixed(0)} of ${duration.toFixed(0)} ms, ${killed ? "killed" : `exited ${e.code}`})`;
  if (!killed) expect(e.code, where).toBe(0);

  const report = JSON.parse((await berthOk(["fsck", "--format", "json"], { root })).stdout);
  expect(report.problems.filter((p: { garbage: boolean }) => !p.garbage), where).toEqual([]);
  expect(report.ok, where).toBe(true);
  for (const [tag, idBefore] of before) {
    expect((await berthOk(["images", "-q", "--no-trunc", tag], { root })).stdout.trim(), `${where}: ${tag}`).toBe(idBefore);
    await berthOk(["image", "inspect", tag], { root });
  }
  if (op.name === "save -o") {
    const out = join(tmp.dir, `out-${n}.tar`);
    // nothing half-written visible: the archive is there whole (it loads) or not at all
    if (existsSync(out)) await berthOk(["load", "-q", "-i", out], { root: join(tmp.dir, `check-${id}`) });
  }
  // the next ordinary write (an import: prune -a may have left no image to tag) leaves no garbage
  await berthOk(["import", "-q", smallDir, `after:${n}`], { root });
  const after = JSON.parse((await berthOk(["fsck", "--format", "json"], { root })).stdout);
  expect(after.problems, `${where}: after the next write`).toEqual([]);
  execFileSync("rm", ["-rf", root]);
  return killed;
}

describe(`kill -9 at random moments (${TRIALS} per operation, seed ${SEED})`, () => {
  for (const [i, op] of OPS.entries()) {
    it(`berth ${op.name}`, { timeout: 60_000 + TRIALS * 10_000 }, async () => {
      const duration = await timeOf(op);
      const random = prng(SEED + i);
      let next = 0;
      let killed = 0;
      const runner = async () => {
        while (next < TRIALS) if (await trial(op, next++, duration, random)) killed++;
      };
      await Promise.all(Array.from({ length: PARALLEL }, runner));
      // the kill points reach into the operation: most trials die before it ends
      expect(killed, `${op.name}: trials killed before the end`).toBeGreaterThanOrEqual(TRIALS / 2);
    });
  }
});
