/**
 * Progress display and Ctrl-C: in a real terminal (tmux, capture-pane), in a
 * pipe (no control characters), as JSON lines, and silent with --quiet; a
 * SIGINT in the middle of save -o or load leaves nothing behind.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { requirePeer } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BERTH, berth, berthOk, expectOneErrorLine, hasControlChars, makeAppDir, makeRootfs, tempDir } from "./helpers.js";

const execFileP = promisify(execFile);
const tmp = tempDir();
const root = join(tmp.dir, "store");
const baseTar = join(tmp.dir, "base.tar");
const bigTar = join(tmp.dir, "big.tar");
const BIG = 160 * 1024 * 1024;

beforeAll(async () => {
  await berthOk(["import", makeRootfs(join(tmp.dir, "rootfs")), "base:1"], { root });
  const app = makeAppDir(join(tmp.dir, "app"), { "small.txt": "small\n" });
  writeFileSync(join(app, "big.bin"), Buffer.alloc(BIG, 1));
  await berthOk(["import", app, "--base", "base:1", "-t", "big:1"], { root });
  await berthOk(["save", "-o", baseTar, "base:1"], { root });
  await berthOk(["save", "-o", bigTar, "big:1"], { root });
}, 120_000);
afterAll(() => tmp.cleanup());

/** A fresh store that has the base image only (so loading big.tar finds one layer that exists). */
async function storeWithBase(name: string): Promise<string> {
  const r = join(tmp.dir, name);
  await berthOk(["load", "-q", "-i", baseTar], { root: r });
  return r;
}

describe("progress in a pipe", () => {
  it("plain lines by default: per layer Done/Exists, a summary, no control characters", async () => {
    const r = await berthOk(["load", "-i", bigTar], { root: await storeWithBase("pipe") });
    expect(hasControlChars(r.stderr)).toBe(false);
    expect(r.stderr).toMatch(/^[0-9a-f]{12}: Exists /m);
    expect(r.stderr).toMatch(/^[0-9a-f]{12}: Done 168MB$/m);
    expect(r.stderr).toMatch(/^Loaded 1 image\(s\), 1 tag\(s\): 1 new layer\(s\) \(\S+\), 1 existing; \S+ read/m);
    expect(r.stdout).toBe("Loaded image: big:1\n");
    const s = await berthOk(["save", "-o", join(tmp.dir, "pipe-save.tar"), "big:1"], { root });
    expect(hasControlChars(s.stderr)).toBe(false);
    expect(s.stderr).toMatch(/^Saved 1 image\(s\), 1 tag\(s\), 2 layer\(s\)/m);
  });

  it("--progress=json: one JSON object per line with start/progress/finish/summary events", async () => {
    const r = await berthOk(["load", "--progress=json", "-i", bigTar], { root: await storeWithBase("json") });
    const events = r.stderr.trim().split("\n").map((l) => JSON.parse(l) as { event: string; status?: string; images?: number; newLayers?: number; reusedLayers?: number });
    expect(new Set(events.map((e) => e.event))).toEqual(new Set(["start", "progress", "finish", "summary"]));
    expect(events.filter((e) => e.event === "finish").map((e) => e.status).sort()).toEqual(["done", "done", "exists"]);
    expect(events.at(-1)).toMatchObject({ event: "summary", images: 1, newLayers: 1, reusedLayers: 1 });
  });

  it("--progress=none and --quiet print nothing on stderr on success", async () => {
    for (const flags of [["--progress=none"], ["--quiet"], ["-q"]]) {
      const r = await berthOk([...flags, "load", "-i", bigTar], { root: await storeWithBase(`quiet${flags.join("")}`) });
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("Loaded image: big:1\n");
    }
    const s = await berthOk(["save", "--progress=none", "-o", join(tmp.dir, "quiet.tar"), "base:1"], { root });
    expect(s.stderr).toBe("");
    expect(s.stdout).toBe("");
  });
});

const tmux = await requirePeer("tmux");

describe.skipIf(!tmux)("progress in a real terminal (tmux)", () => {
  const server = `berth-cli-${process.pid}`;
  const t = (args: string[]) => execFileP(tmux!, ["-L", server, ...args], { encoding: "utf8" });
  afterAll(async () => {
    await t(["kill-server"]).catch(() => undefined);
  });

  /** Run a shell command in a fresh 160x50 pane; return the screen once `done` matches it. */
  async function screen(name: string, command: string, done: RegExp): Promise<string> {
    await t(["new-session", "-d", "-s", name, "-x", "160", "-y", "50", `${command}; echo EXIT=$?; sleep 60`]);
    const deadline = Date.now() + 60_000;
    let text = "";
    while (Date.now() < deadline) {
      text = (await t(["capture-pane", "-p", "-t", name, "-S", "-50"])).stdout;
      if (done.test(text) && /EXIT=\d+/.test(text)) return text;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`tmux pane ${name} never showed ${done}:\n${text}`);
  }

  const sh = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

  it("load: live bars per layer, Exists for the layer the store has, the summary", async () => {
    const r = await storeWithBase("tty-load");
    const text = await screen("load", `BERTH_ROOT=${sh(r)} ${sh(process.execPath)} ${sh(BERTH)} load -i ${sh(bigTar)}`, /Loaded 1 image/);
    expect(text).toContain("EXIT=0");
    expect(text).toMatch(/^big\.tar: Done\s+\[=+>\] (\d+MB)\/\1$/m);
    expect(text).toMatch(/[0-9a-f]{12}: Exists\s+\[=+>\]/);
    expect(text).toMatch(/[0-9a-f]{12}: Done\s+\[=+>\] 168MB\/168MB/);
    expect(text).toMatch(/Loaded 1 image\(s\), 1 tag\(s\): 1 new layer\(s\)/);
    // stdout comes after the live display, on its own line
    expect(text).toMatch(/^Loaded image: big:1$/m);
  });

  it("save -o with --progress=tty: a bar per layer and the total, then the summary", async () => {
    const out = join(tmp.dir, "tty-save.tar");
    const text = await screen(
      "save",
      `BERTH_ROOT=${sh(root)} ${sh(process.execPath)} ${sh(BERTH)} save --progress=tty -o ${sh(out)} big:1`,
      /Saved 1 image/,
    );
    expect(text).toContain("EXIT=0");
    expect(text).toMatch(/^tty-save\.tar: Done\s+\[=+>\] (\d+MB)\/\1$/m);
    expect(text.match(/^[0-9a-f]{12}: Done\s+\[=+>\]/gm)?.length).toBe(2);
    expect(text).toMatch(/Saved 1 image\(s\), 1 tag\(s\), 2 layer\(s\): \d+MB \(both\)/);
    expect(existsSync(out)).toBe(true);
  });

  it("save to the terminal is refused (usage error, exit 2)", async () => {
    const text = await screen("tty-refuse", `BERTH_ROOT=${sh(root)} ${sh(process.execPath)} ${sh(BERTH)} save base:1`, /EXIT=\d+/);
    expect(text).toMatch(/berth: save: cowardly refusing to write a tar archive to a terminal/);
    expect(text).toContain("EXIT=2");
    const load = await screen("tty-load-refuse", `BERTH_ROOT=${sh(root)} ${sh(process.execPath)} ${sh(BERTH)} load`, /EXIT=\d+/);
    expect(load).toMatch(/berth: load: requested load from stdin, but stdin is a terminal/);
    expect(load).toContain("EXIT=2");
  });
});

/** Start berth with --progress=json, send SIGINT once a progress event shows `minBytes` done. */
function interruptAfter(args: string[], r: string, minBytes: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BERTH, "--progress=json", ...args], { env: { ...process.env, BERTH_ROOT: r }, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    let sent = false;
    child.stdout.resume();
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString();
      if (sent) return;
      for (const line of err.split("\n")) {
        try {
          const e = JSON.parse(line) as { event?: string; current?: number };
          if (e.event === "progress" && (e.current ?? 0) >= minBytes) {
            sent = true;
            child.kill("SIGINT");
            return;
          }
        } catch {
          // partial line or the error line
        }
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stderr: err }));
  });
}

describe("Ctrl-C", () => {
  it("during save -o: exit 130, no output file, no temp file", async () => {
    const dir = join(tmp.dir, "sigint-save");
    (await import("node:fs")).mkdirSync(dir);
    const out = join(dir, "x.tar");
    const r = await interruptAfter(["save", "-o", out, "big:1"], root, 1);
    expect(r.code).toBe(130);
    expect(r.stderr).not.toMatch(/"event":"summary"/);
    expect(expectOneErrorLine(r.stderr.split("\n").filter((l) => !l.startsWith("{")).join("\n"))).toBe("berth: save: interrupted (SIGINT); nothing was kept");
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("during load: exit 130, images unchanged, fsck clean", async () => {
    const r0 = await storeWithBase("sigint-load");
    const before = (await berthOk(["images", "-a", "-q", "--no-trunc"], { root: r0 })).stdout;
    const r = await interruptAfter(["load", "-i", bigTar], r0, 1);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^berth: load: interrupted \(SIGINT\); nothing was kept$/m);
    expect((await berthOk(["images", "-a", "-q", "--no-trunc"], { root: r0 })).stdout).toBe(before);
    const f = await berth(["fsck"], { root: r0 });
    expect(f.code).toBe(0);
    expect(f.stderr).toMatch(/fsck: 0 problem\(s\)/);
    // nothing half-written is left: the store holds only the base's blobs
    const blobs = readdirSync(join(r0, "blobs", "sha256"));
    const again = await berthOk(["load", "-q", "-i", baseTar], { root: join(tmp.dir, "sigint-ref") });
    expect(again.code).toBe(0);
    expect(blobs.sort()).toEqual(readdirSync(join(tmp.dir, "sigint-ref", "blobs", "sha256")).sort());
  });
});
