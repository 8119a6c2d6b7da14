/**
 * The registry of `berth serve` under mixed loopback load (issue 17), for
 * BERTH_LOAD_SECONDS (default 20; 600 for the long run), all at once:
 * pushers (each push a new image: a random layer, its config, its manifest
 * under a tag), pullers (a pushed image's manifest by tag, then every blob,
 * digests checked), a deleter (pushed manifests by digest), readers
 * hammering one manifest, the server's own sweep every second, and image
 * prune + GC from another process on the same root. Afterwards: no 5xx,
 * every image still tagged pulls whole with verified blobs, fsck finds no
 * damage, and the server's memory stayed flat.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openImageService } from "@berth/image-service";
import { makeTar } from "@berth/image-store/tar-fixture";
import { afterAll, describe, expect, it } from "vitest";
import { RegistryClient, tempDir } from "./helpers.js";

const SECONDS = Number(process.env.BERTH_LOAD_SECONDS ?? 20);
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const sha = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

const tmp = tempDir("berth-load-");
/** The server process, killed after the test however it ended (a failed test never asks for its statuses). */
let serverChild: ChildProcess | undefined;
afterAll(async () => {
  if (serverChild && serverChild.exitCode === null && serverChild.signalCode === null) {
    const exited = new Promise((r) => serverChild!.once("exit", r));
    serverChild.kill("SIGKILL");
    await exited;
  }
  tmp.cleanup();
});

/** serveStore in its own process (so its memory is its own), counting response statuses; prints them on SIGTERM. */
function startServer(root: string): Promise<{ child: ChildProcess; url: string; statuses: () => Promise<Record<string, number>> }> {
  const dist = fileURLToPath(new URL("../dist/index.js", import.meta.url));
  const script = `
    const { serveStore } = await import(${JSON.stringify(dist)});
    const counts = {};
    const s = await serveStore({ root: ${JSON.stringify(root)}, port: 0, sweepIntervalMs: 1000,
      log: { format: "json", write: (l) => { const k = JSON.parse(l).status; counts[k] = (counts[k] ?? 0) + 1; } } });
    process.on("SIGTERM", async () => { await s.close(); console.log(JSON.stringify(counts)); process.exit(0); });
    console.log(s.port);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  serverChild = child;
  let out = "";
  child.stdout!.on("data", (c: Buffer) => {
    out += c.toString();
  });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`server exited ${code}`)));
    const poll = setInterval(() => {
      const m = /^(\d+)\n/.exec(out);
      if (!m) return;
      clearInterval(poll);
      child.removeAllListeners("exit");
      const statuses = async () => {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
        return JSON.parse(out.split("\n")[1]!) as Record<string, number>;
      };
      resolve({ child, url: `http://127.0.0.1:${m[1]}`, statuses });
    }, 20);
  });
}

interface Pushed {
  repo: string;
  tag: string;
  digest: string;
  blobs: string[];
  deleted: boolean;
}

/** A new image (one random layer) pushed as repo:tag. */
async function pushImage(c: RegistryClient, repo: string, tag: string): Promise<Pushed> {
  const layer = makeTar({ "data.bin": randomBytes(16_384 + Math.floor(Math.random() * 200_000)) });
  const config = JSON.stringify({ architecture: "amd64", os: "linux", created: new Date().toISOString(), rootfs: { type: "layers", diff_ids: [sha(layer)] } });
  const blobs = [sha(layer), sha(config)];
  for (const [bytes, digest] of [
    [layer, blobs[0]!],
    [Buffer.from(config), blobs[1]!],
  ] as const) {
    const r = await c.pushBlob(bytes, digest, repo);
    expect(r.status, `blob upload to ${repo}`).toBe(201);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: blobs[1], size: Buffer.byteLength(config) },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: blobs[0], size: layer.length }],
  });
  const r = await c.pushManifest(tag, manifest, MANIFEST, repo);
  expect(r.status, `manifest PUT ${repo}:${tag}`).toBe(201);
  return { repo, tag, digest: sha(manifest), blobs, deleted: false };
}

/** Pull `p` by tag and check every blob; false when a concurrent delete took it first. */
async function pullImage(c: RegistryClient, p: Pushed): Promise<boolean> {
  const m = await c.request("GET", `/v2/<name>/manifests/${p.tag}`, { name: p.repo, headers: { Accept: MANIFEST } });
  if (m.status === 404 && p.deleted) return false;
  expect(m.status, `GET ${p.repo}:${p.tag}`).toBe(200);
  expect(sha(m.body)).toBe(p.digest);
  for (const d of p.blobs) {
    const b = await c.request("GET", `/v2/<name>/blobs/${d}`, { name: p.repo });
    if (b.status === 404 && p.deleted) return false;
    expect(b.status, `GET ${p.repo} blob ${d}`).toBe(200);
    expect(sha(b.body), `${p.repo} blob ${d}`).toBe(d);
  }
  return true;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

describe(`berth serve under ${SECONDS} s of mixed loopback load`, () => {
  it("pushes, pulls, deletes, reads and GC at once: no 5xx, nothing lost or corrupt, memory flat", { timeout: SECONDS * 1000 + 180_000 }, async () => {
    const root = join(tmp.dir, "root");
    const server = await startServer(root);
    const c = new RegistryClient(server.url, "load/hot");
    const hot = await pushImage(c, "load/hot", "1");
    const pushed: Pushed[] = [];
    const counts = { pushes: 0, pulls: 0, deletes: 0, reads: 0, prunes: 0 };
    const rss: number[] = [];
    const deadline = Date.now() + SECONDS * 1000;
    const running = () => Date.now() < deadline;
    const loop = async (fn: () => Promise<void>) => {
      while (running()) await fn();
    };
    const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
    const svc = await openImageService({ root });
    try {
      await Promise.all([
        ...[0, 1].map((w) =>
          loop(async () => {
            pushed.push(await pushImage(c, `load/p${w}`, String(counts.pushes++)));
          }),
        ),
        ...[0, 1, 2].map(() =>
          loop(async () => {
            const live = pushed.filter((p) => !p.deleted);
            if (live.length === 0) return pause(20);
            if (await pullImage(c, live[Math.floor(Math.random() * live.length)]!)) counts.pulls++;
          }),
        ),
        loop(async () => {
          await pause(100);
          const live = pushed.filter((p) => !p.deleted);
          if (live.length < 4) return;
          const p = live[Math.floor(Math.random() * live.length)]!;
          p.deleted = true;
          const r = await c.request("DELETE", `/v2/<name>/manifests/${p.digest}`, { name: p.repo });
          expect(r.status, `DELETE ${p.repo}@${p.digest}`).toBe(202);
          counts.deletes++;
        }),
        ...[0, 1, 2, 3].map(() =>
          loop(async () => {
            const r = await c.request("GET", "/v2/<name>/manifests/1", { headers: { Accept: MANIFEST } });
            expect(r.status).toBe(200);
            counts.reads++;
          }),
        ),
        loop(async () => {
          await pause(1000);
          await svc.prune();
          await svc.store.gc();
          counts.prunes++;
        }),
        loop(async () => {
          rss.push(rssOf(server.child.pid!));
          await pause(1000);
        }),
      ]);

      // everything still tagged pulls whole, with verified blobs
      for (const p of [hot, ...pushed.filter((q) => !q.deleted)]) expect(await pullImage(c, p)).toBe(true);
      const report = await svc.fsck();
      expect(report.problems.filter((p) => !p.garbage)).toEqual([]);
    } finally {
      await svc.close();
    }
    const statuses = await server.statuses();
    const errors = Object.entries(statuses).filter(([s]) => Number(s) >= 500);
    // memory: the second half of the run peaks no higher than the first half's peak plus a margin
    const half = Math.floor(rss.length / 2);
    const first = Math.max(...rss.slice(0, half));
    const second = Math.max(...rss.slice(half));
    console.log(`load ${SECONDS} s: ${JSON.stringify(counts)}, statuses ${JSON.stringify(statuses)}, peak RSS first half ${(first / 2 ** 20).toFixed(0)} MiB, second half ${(second / 2 ** 20).toFixed(0)} MiB`);
    expect(errors).toEqual([]);
    expect(counts.pushes).toBeGreaterThan(0);
    expect(counts.pulls).toBeGreaterThan(0);
    expect(counts.deletes).toBeGreaterThan(0);
    expect(second).toBeLessThanOrEqual(first * 1.25 + 32 * 2 ** 20);
  });
});
