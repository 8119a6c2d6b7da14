/**
 * Eight berth processes at once on one store root (issue 17), with `berth
 * serve` answering pushes and pulls on the same root. Each worker runs rounds
 * of three operations out of load, import, tag, rmi, image prune, the GC of
 * `fsck --repair`, cache import + cache prune, a push into the server and a
 * pull from it, each beside the others. Checks: no command fails,
 * every tag a worker made and kept resolves to the image it was given, the
 * server answered no 5xx, and fsck finds nothing at the end.
 *
 * BERTH_CONCURRENCY_ROUNDS per worker (default 2; 10 for the long run).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BERTH, berth, berthOk, cacheLayout, makeRootfs, tempDir } from "./helpers.js";

const ROUNDS = Number(process.env.BERTH_CONCURRENCY_ROUNDS ?? 2);
const WORKERS = 8;
const OPS = ["load", "import", "tag", "rmi", "image prune", "gc", "cache prune", "push", "pull"] as const;
type OpName = (typeof OPS)[number];

const tmp = tempDir("berth-concurrency-");
const root = join(tmp.dir, "root");
const source = join(tmp.dir, "source");
const archive = join(tmp.dir, "app.tar");
const appDir = join(tmp.dir, "app");
const layout = join(tmp.dir, "cache-layout");
let server: ChildProcess | undefined;
let port = 0;
const serverLog: string[] = [];
const ids = { base: "", app: "", pushed: "" };
/** tag -> image ID, for every tag a worker made and has not removed */
const kept = new Map<string, string>();

const idOf = async (tag: string, at = root) => (await berthOk(["images", "-q", "--no-trunc", tag], { root: at })).stdout.trim();

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server!.once("exit", r));
    server.kill("SIGKILL");
    await exited;
  }
  if (!process.env.BERTH_KEEP) tmp.cleanup();
});

beforeAll(async () => {
  mkdirSync(appDir);
  writeFileSync(join(appDir, "a.bin"), randomBytes(2_000_000));
  const rootfs = makeRootfs(join(tmp.dir, "rootfs"));
  await berthOk(["import", "-q", rootfs, "base:1"], { root });
  ids.base = await idOf("base:1");
  await berthOk(["import", "-q", rootfs, "base:1"], { root: source });
  await berthOk(["import", "-q", appDir, "--base", "base:1", "app:1"], { root: source });
  await berthOk(["save", "-q", "-o", archive, "app:1"], { root: source });
  ids.app = await idOf("app:1", source);
  writeFileSync(join(appDir, "b.bin"), randomBytes(2_000_000));
  await berthOk(["import", "-q", appDir, "--base", "app:1", "app:2"], { root: source });
  ids.pushed = await idOf("app:2", source);
  await berthOk(["load", "-q", "-i", archive], { root });
  kept.set("base:1", ids.base).set("app:1", ids.app);
  await cacheLayout(layout, Array.from({ length: 10 }, () => randomBytes(20_000)));

  server = spawn(process.execPath, [BERTH, "serve", "-p", "0", "--log-format", "json"], { env: { ...process.env, BERTH_ROOT: root }, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  port = await new Promise<number>((resolve, reject) => {
    server!.stderr!.on("data", (c: Buffer) => {
      err += c.toString();
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    server!.once("exit", () => reject(new Error(`berth serve exited:\n${err}`)));
  });
  server.stderr!.on("data", (c: Buffer) => serverLog.push(c.toString()));
}, 120_000);

/** One worker's operation in one round; records what it keeps in `kept`. */
async function run(op: OpName, w: number, r: number, own: string[], src: string): Promise<void> {
  const tag = (kind: string) => `${kind}-w${w}:${r}`;
  switch (op) {
    case "load":
      await berthOk(["load", "-q", "-i", archive], { root });
      return;
    case "import": {
      await berthOk(["import", "-q", appDir, tag("imp")], { root });
      const id = await idOf(tag("imp"));
      kept.set(tag("imp"), id);
      own.push(tag("imp"));
      return;
    }
    case "tag":
      await berthOk(["tag", "base:1", tag("t")], { root });
      kept.set(tag("t"), ids.base);
      own.push(tag("t"));
      return;
    case "rmi": {
      const victim = own.shift() ?? tag("gone");
      if (!kept.has(victim)) await berthOk(["tag", "app:1", victim], { root });
      await berthOk(["rmi", victim], { root });
      kept.delete(victim);
      return;
    }
    case "image prune":
      await berthOk(["image", "prune", "-f"], { root });
      return;
    case "gc": {
      // JSON: a failure shows each problem fsck found
      const r = await berth(["fsck", "--repair", "--format", "json"], { root });
      if (r.code !== 0) throw new Error(`berth fsck --repair exited ${r.code}: ${r.stdout} ${r.stderr}`);
      return;
    }
    case "cache prune":
      await berthOk(["cache", "import", layout], { root });
      await berthOk(["cache", "prune", "-a", "-f"], { root });
      return;
    case "push": {
      const name = `127.0.0.1:${port}/${tag("pushed")}`;
      await berthOk(["tag", "app:2", name], { root: src });
      await berthOk(["push", "-q", name], { root: src });
      kept.set(tag("pushed"), ids.pushed);
      own.push(tag("pushed"));
      return;
    }
    case "pull": {
      const name = `127.0.0.1:${port}/app:1`;
      await berthOk(["pull", "-q", name], { root: src });
      expect(await idOf(name, src)).toBe(ids.app);
      await berthOk(["rmi", name], { root: src });
      return;
    }
  }
}

describe(`${WORKERS} processes on one root with berth serve (${ROUNDS} rounds each)`, () => {
  it("no command fails, nothing kept is lost, no 5xx, fsck clean", { timeout: 120_000 + ROUNDS * 120_000 }, async () => {
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        const src = join(tmp.dir, `source-${w}`);
        execFileSync("cp", ["-a", source, src]);
        const own: string[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          // worker w, round r: three consecutive operations, shifted per worker and round, so every operation runs beside the others
          for (let k = 0; k < 3; k++) await run(OPS[(w * 3 + r + k) % OPS.length]!, w, r, own, src);
        }
      }),
    );
    const report = JSON.parse((await berthOk(["fsck", "--format", "json"], { root })).stdout);
    const problems = JSON.stringify(report.problems, null, 1);
    for (const [tag, id] of kept) expect(await idOf(tag), `${tag} (fsck: ${problems})`).toBe(id);
    for (const tag of kept.keys()) await berthOk(["image", "inspect", tag], { root });
    expect(report.problems).toEqual([]);

    server!.kill("SIGTERM");
    await new Promise((r) => server!.once("exit", r));
    const requests = serverLog
      .join("")
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { status: number; method: string; path: string });
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((q) => q.status >= 500)).toEqual([]);

  });
});
