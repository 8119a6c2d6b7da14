/**
 * The berth CLI against the real dockerd (Debian's docker.io 20.10 via
 * @berth/peers): docker save | berth load, berth save | docker load, berth
 * docker push (incremental) and pull, checked with `docker image inspect`.
 * Skips when dockerd is unavailable, fails under BERTH_REQUIRE_PEERS=1.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { type DockerPeer, busyboxBase, classicImage, dockerd, history as dockerHistory, inspect } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BERTH, berthOk, makeAppDir, tempDir } from "./helpers.js";

const peer: DockerPeer | undefined = await dockerd();
const tmp = tempDir();
afterAll(() => tmp.cleanup());
const root = join(tmp.dir, "store");
const TAG = `berth-cli-test/app:${process.pid}`;
const SAVED = `berth-cli-test/saved:${process.pid}`;
const CLASSIC = `berth-cli-test/classic:${process.pid}`;

/** `left | right` as real processes; resolves with both exit codes and right's output. */
function pipe(
  left: { cmd: string; args: string[]; env?: NodeJS.ProcessEnv },
  right: { cmd: string; args: string[]; env?: NodeJS.ProcessEnv },
): Promise<{ leftCode: number; code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const a = spawn(left.cmd, left.args, { env: left.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    const b = spawn(right.cmd, right.args, { env: right.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    a.stdout.pipe(b.stdin);
    let out = "";
    let err = "";
    b.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    b.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    a.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    const closed = (p: ReturnType<typeof spawn>) => new Promise<number>((res) => p.on("close", (c) => res(c ?? -1)));
    a.on("error", reject);
    b.on("error", reject);
    Promise.all([closed(a), closed(b)]).then(([leftCode, code]) => resolve({ leftCode, code, stdout: out, stderr: err }), reject);
  });
}

const berthEnv = (p: DockerPeer) => ({ ...p.env, BERTH_ROOT: root });

// the daemon is shared with other test processes on a small machine: allow it time
describe.skipIf(!peer)("berth with the real dockerd", { timeout: 240_000 }, () => {
  const p = peer as DockerPeer;
  let baseTag: string;
  let baseId: string;
  let classic: { tag: string; id: string };

  beforeAll(async () => {
    baseTag = "berth-peers/busybox:latest";
    baseId = await busyboxBase(p, baseTag);
    // other test processes may rebuild the shared fixture: pin it under our own tag
    const fixture = await classicImage(p);
    await p.run(["tag", fixture.id, CLASSIC]);
    classic = { tag: CLASSIC, id: fixture.id };
  }, 600_000);

  afterAll(async () => {
    if (peer) await p.docker(["rmi", TAG, SAVED, CLASSIC]);
  });

  it("docker save X | berth load: same IDs, tags, history and inspect keys", async () => {
    const r = await pipe(
      { cmd: p.dockerPath, args: ["save", baseTag, classic.tag], env: p.env },
      { cmd: process.execPath, args: [BERTH, "load", "--progress=plain"], env: berthEnv(p) },
    );
    expect(r.leftCode).toBe(0);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Loaded image: ${classic.tag}`);
    for (const tag of [baseTag, classic.tag]) {
      const d = await inspect(p, tag);
      const [b] = JSON.parse((await berthOk(["image", "inspect", tag], { root })).stdout);
      expect(b.Id).toBe(d.Id);
      // the archive carries the tags it was saved by; the daemon may know more for the same image
      expect(b.RepoTags).toEqual([tag]);
      expect(d.RepoTags).toContain(tag);
      expect(b.RootFS).toEqual(d.RootFS);
      expect(b.Config).toEqual(d.Config);
      expect(b.Created).toBe(d.Created);
      expect(b.Architecture).toBe(d.Architecture);
      expect(b.Os).toBe(d.Os);
      expect(b.Size).toBe(d.Size); // file bytes of the layers, counted as dockerd does
      // docker's keys, minus the graph driver (berth has none), plus ManifestDigest
      const dockerKeys = Object.keys(d).filter((k) => k !== "GraphDriver");
      expect(Object.keys(b).filter((k) => k !== "ManifestDigest").sort()).toEqual(dockerKeys.sort());
      expect(b.ManifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
    // history: the same steps, comments and sizes
    const dh = await dockerHistory(p, classic.tag);
    const bh = (await berthOk(["history", "--no-trunc", "--format", "json", classic.tag], { root })).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(bh.map((h) => h.CreatedBy)).toEqual(dh.map((h) => h.CreatedBy));
    expect(bh.map((h) => h.Comment)).toEqual(dh.map((h) => h.Comment));
    expect(bh.map((h) => h.Size)).toEqual(dh.map((h) => h.sizeBytes));
    expect(bh[0].ID).toBe(classic.id);
    // the truncated CREATED BY column is docker's, character for character
    const dTrunc = (await p.run(["history", "--format", "{{.CreatedBy}}", classic.tag])).stdout;
    const bTrunc = (await berthOk(["history", "--format", "{{.CreatedBy}}", classic.tag], { root })).stdout;
    expect(bTrunc).toBe(dTrunc);
    // the images table shows docker's short ID for it
    const row = (await berthOk(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"], { root })).stdout;
    expect(row).toContain(`${classic.tag} ${classic.id.slice(7, 19)}`);
  });

  it("berth save X | docker load: docker sees the same ID and tag", async () => {
    const app = makeAppDir(join(tmp.dir, "saved-app"), { "srv/saved.txt": "from berth save\n" });
    const id = (await berthOk(["import", app, "--base", baseTag, "-t", SAVED, "--change", "ENV FROM=berth"], { root, env: p.env })).stdout.trim();
    const r = await pipe(
      { cmd: process.execPath, args: [BERTH, "save", SAVED], env: berthEnv(p) },
      { cmd: p.dockerPath, args: ["load"], env: p.env },
    );
    expect(r.leftCode).toBe(0);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Loaded image: ${SAVED}`);
    const d = await inspect(p, SAVED);
    expect(d.Id).toBe(id);
    expect(d.RepoTags).toContain(SAVED);
    expect(d.Config?.Env).toContain("FROM=berth");
    // and docker runs it: the file from the berth layer is there
    const run = await p.docker(["run", "--rm", "--network", "none", SAVED, "cat", "/srv/saved.txt"]);
    if (run.code === 0) expect(run.stdout).toBe("from berth save\n");
  });

  it("berth docker push sends only the new layer when the daemon has the base", async () => {
    const big = new Uint8Array(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    const app = makeAppDir(join(tmp.dir, "push-app"), { "srv/data.bin": big, "srv/hello.txt": "pushed\n", "srv/run.txt": `${process.pid} ${Date.now()}\n` });
    // (the run file makes the layer new to the shared dockerd, whatever earlier runs left there)
    const id = (await berthOk(["import", app, "--base", baseTag, "-t", TAG, "--change", 'CMD ["cat","/srv/hello.txt"]'], { root })).stdout.trim();
    const [img] = JSON.parse((await berthOk(["image", "inspect", TAG], { root })).stdout);
    const baseSize = (await inspect(p, baseTag)).Size;
    const r = await berthOk(["docker", "push", "--progress=json", TAG], { root, env: p.env });
    const events = r.stderr.trim().split("\n").map((l) => JSON.parse(l));
    const summary = events.find((e) => e.event === "summary");
    expect(summary).toMatchObject({ layersSkipped: 1, layersSent: 1, fellBack: false });
    // bytes sent: the new layer plus metadata, far less than the base layer
    const newLayer = 300_000 + 7 + 4096;
    expect(summary.bytesSent).toBeGreaterThan(300_000);
    expect(summary.bytesSent).toBeLessThan(newLayer + 64 * 1024);
    expect(summary.bytesSent).toBeLessThan(baseSize);
    expect(events.filter((e) => e.event === "finish" && e.status === "exists")).toHaveLength(1);
    const d = await inspect(p, TAG);
    expect(d.Id).toBe(id);
    expect(d.RepoTags).toContain(TAG);
    expect(d.RootFS.Layers).toEqual(img.RootFS.Layers);
    // plain progress: "Exists" for the base, a summary line
    const again = await berthOk(["docker", "push", "--progress=plain", TAG], { root, env: p.env });
    expect(again.stderr).toMatch(/: Exists/);
    expect(again.stderr).toMatch(/2 skipped|1 skipped/);
  });

  it("berth docker pull copies a daemon image into a fresh store with the same ID", async () => {
    const fresh = join(tmp.dir, "pulled");
    const r = await berthOk(["docker", "pull", classic.tag], { root: fresh, env: p.env });
    expect(r.stdout).toContain(`Loaded image: ${classic.tag}`);
    const [b] = JSON.parse((await berthOk(["image", "inspect", classic.tag], { root: fresh })).stdout);
    const d = await inspect(p, classic.tag);
    expect(b.Id).toBe(d.Id);
    expect(b.RepoTags).toEqual([classic.tag]);
    expect(d.RepoTags).toContain(classic.tag);
    expect(baseId).toMatch(/^sha256:/);
  });

  it("docker pull / push of an image that does not exist: not found (3)", async () => {
    const r1 = await (await import("./helpers.js")).berth(["docker", "pull", "berth-cli-test/nope:404"], { root, env: p.env });
    expect(r1.code).toBe(3);
    const r2 = await (await import("./helpers.js")).berth(["docker", "push", "berth-cli-test/nope:404"], { root, env: p.env });
    expect(r2.code).toBe(3);
  });

  it("an unreachable daemon is an I/O error (6)", async () => {
    const r = await (await import("./helpers.js")).berth(["docker", "pull", classic.tag], {
      root,
      env: { ...p.env, DOCKER_HOST: `unix://${join(tmp.dir, "no.sock")}` },
    });
    expect(r.code).toBe(6);
    expect(r.stderr.trim().split("\n").filter((l) => l.startsWith("berth: "))).toHaveLength(1);
  });
});
