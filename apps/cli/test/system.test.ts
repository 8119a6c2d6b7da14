import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BERTH, berth, berthOk, cacheLayout, expectOneErrorLine, makeAppDir, makeRootfs, makeTar, tempDir } from "./helpers.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

describe("berth system df", () => {
  it("counts images, active (tagged) ones, reclaimable bytes; json rows", async () => {
    const root = join(tmp.dir, "df");
    await berthOk(["import", makeRootfs(join(tmp.dir, "rootfs-df")), "base:1"], { root });
    await berthOk(["import", makeAppDir(join(tmp.dir, "app-df"), { "a.bin": new Uint8Array(50_000).fill(3) })], { root });
    const t = (await berthOk(["system", "df"], { root })).stdout.trimEnd().split("\n");
    expect(t[0]).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
    expect(t[1]).toMatch(/^Images\s+2\s+1\s+\S+\s+\S+ \(\d+%\)$/);
    const rows = (await berthOk(["system", "df", "--format", "json"], { root })).stdout.trim().split("\n").map((l) => JSON.parse(l));
    const images = rows.find((r) => r.Type === "Images");
    expect(images).toMatchObject({ TotalCount: 2, Active: 1 });
    expect(images.Reclaimable).toBeGreaterThan(50_000);
    expect(images.Size).toBeGreaterThan(images.Reclaimable);
    const v = (await berthOk(["system", "df", "-v"], { root })).stdout;
    expect(v).toContain("Images space usage:");
  });
});

describe("berth fsck", () => {
  let root: string;
  let appId: string;
  beforeAll(async () => {
    root = join(tmp.dir, "fsck");
    await berthOk(["import", makeRootfs(join(tmp.dir, "rootfs-fsck")), "base:1"], { root });
    appId = (await berthOk(["import", makeAppDir(join(tmp.dir, "app-fsck"), { "f.txt": "fsck me\n" }), "--base", "base:1", "app:1"], { root })).stdout.trim();
  });

  it("is clean on a healthy store and removes a stale ingest of a dead process", async () => {
    mkdirSync(join(root, "ingest"), { recursive: true });
    const stale = join(root, "ingest", "999999999-1-deadbeef.ingest");
    writeFileSync(stale, "half a blob");
    utimesSync(stale, new Date(0), new Date(0));
    const r = await berthOk(["fsck"], { root });
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/fsck: 0 problem\(s\)/);
    expect(existsSync(stale)).toBe(false);
    const j = JSON.parse((await berthOk(["fsck", "--format", "json"], { root })).stdout);
    expect(j.ok).toBe(true);
    expect(j.checked.images).toBe(2);
  });

  it("reports a corrupt and a missing blob with their paths (exit 1); --repair removes what can go", async () => {
    const blobs = join(root, "blobs", "sha256");
    const [img] = JSON.parse((await berthOk(["image", "inspect", "app:1"], { root })).stdout);
    const manifest = JSON.parse(readFileSync(join(blobs, img.ManifestDigest.slice(7)), "utf8"));
    const [bottom, top] = manifest.layers.map((l: { digest: string }) => l.digest.slice(7));
    // flip one byte of the bottom layer blob, delete the top one
    const b = readFileSync(join(blobs, bottom));
    b[1000] = b[1000]! ^ 0xff;
    writeFileSync(join(blobs, bottom), b);
    rmSync(join(blobs, top));
    let r = await berth(["fsck"], { root });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`blob-corrupt: ${blobs}/${bottom}: .*does not match`));
    expect(r.stdout).toContain(`${blobs}/${top}`);
    expect(r.stdout).toMatch(/missing/);
    expect(r.stderr).toMatch(/fsck: [1-9]\d* problem\(s\)/);
    const report = JSON.parse((await berth(["fsck", "--format", "json"], { root })).stdout);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p: { kind: string }) => p.kind)).toContain("blob-corrupt");
    r = await berth(["fsck", "--repair"], { root });
    expect(r.stdout).toMatch(/blob-corrupt: .*\(repaired\)/);
    // the corrupt blob is gone (it could not be trusted), and with it the images that
    // needed it, with their tags (as moby drops images whose layers are gone): load them again
    expect(existsSync(join(blobs, bottom))).toBe(false);
    expect(r.stdout).toMatch(new RegExp(`image-layer-missing: .*${appId.slice(7)}.* \\(repaired\\)`));
    expect(r.code).toBe(0);
    const after = JSON.parse((await berth(["fsck", "--format", "json"], { root })).stdout);
    expect(after.problems).toEqual([]);
    expect((await berthOk(["images", "-q"], { root })).stdout).toBe("");
  });

  it("berth images leaves out (with a warning) an image whose layer is gone", async () => {
    const r2 = join(tmp.dir, "fsck-unusable");
    const id = (await berthOk(["import", makeRootfs(join(tmp.dir, "rootfs-unusable")), "lost:1"], { root: r2 })).stdout.trim();
    const [img] = JSON.parse((await berthOk(["image", "inspect", "lost:1"], { root: r2 })).stdout);
    // one layer: its ChainID is its DiffID; the layer record vanishes
    rmSync(join(r2, "layers", "sha256", `${img.RootFS.Layers[0].slice(7)}.json`));
    const r = await berthOk(["images"], { root: r2 });
    expect(r.stdout).not.toContain("lost");
    expect(r.stderr).toContain(`warning: image ${id.slice(7, 19)} is not usable and not listed`);
    expect(r.stderr).toContain("berth fsck --repair removes it");
    expect((await berth(["fsck"], { root: r2 })).code).toBe(1);
    await berthOk(["fsck", "--repair"], { root: r2 });
    expect((await berthOk(["images"], { root: r2 })).stderr).toBe("");
    expect((await berth(["image", "inspect", "lost:1"], { root: r2 })).code).not.toBe(0);
  });

  it("rejects unknown flags", async () => {
    const r = await berth(["fsck", "--fix"], { root: join(tmp.dir, "fsck2") });
    expect(r.code).toBe(2);
  });
});

describe("berth cache", () => {
  it("imports a cache layout (dir and tar), du lists records, prune honours --keep-storage and --all", async () => {
    const root = join(tmp.dir, "cache");
    const layout = join(tmp.dir, "layout");
    const { keys, chainIDs } = await cacheLayout(layout);
    const r = await berthOk(["cache", "import", layout], { root });
    const lines = r.stdout.trim().split("\n").sort();
    expect(lines).toEqual(keys.map((k, i) => `${k}\t${chainIDs[i]}`).sort());
    expect(r.stderr).toMatch(/Imported 2 of 2 cache key\(s\) \(records\)/);

    const du = (await berthOk(["cache", "du"], { root })).stdout;
    expect(du).toMatch(/^ID\s+RECLAIMABLE\s+SIZE\s+LAST ACCESSED/);
    expect(du).toMatch(/Total:\s+\S+B/);
    const records = (await berthOk(["builder", "du", "--format", "json"], { root })).stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(records.map((x) => x.chainID).sort()).toEqual([...chainIDs].sort());
    const total = records.reduce((n: number, x: { size: number }) => n + x.size, 0);
    expect((await berthOk(["cache", "du", "-v"], { root })).stdout).toMatch(/Parents:/);

    // keep more than there is: nothing goes
    let p = await berthOk(["cache", "prune", "--keep-storage", `${total + 100}B`], { root });
    expect(p.stdout).toMatch(/^Total:\s+0B$/m);
    // keep just the bottom record's bytes: the top (a leaf, nobody's parent) goes first
    const bottom = records.find((x: { parents: string[] }) => x.parents.length === 0);
    p = await berthOk(["cache", "prune", "--keep-storage", String(bottom.size)], { root });
    expect(p.stdout).toMatch(/^Deleted: /m);
    const left = (await berthOk(["cache", "du", "--format", "json"], { root })).stdout.trim().split("\n").filter(Boolean);
    expect(left).toHaveLength(1);
    p = await berthOk(["cache", "prune", "--all", "-f"], { root });
    expect(p.stdout).toMatch(/^Deleted: /m);
    expect((await berthOk(["cache", "du", "--format", "json"], { root })).stdout.trim()).toBe("");

    // the same layout as a tar
    const tarFile = join(tmp.dir, "layout.tar");
    const { execFileSync } = await import("node:child_process");
    execFileSync("tar", ["-C", layout, "-cf", tarFile, "."]);
    const rt = await berthOk(["cache", "import", tarFile], { root });
    expect(rt.stdout.trim().split("\n")).toHaveLength(2);
  });

  it("prune --filter until keeps recently used records; bad sizes and filters are usage errors", async () => {
    const root = join(tmp.dir, "cache-until");
    await cacheLayout(join(tmp.dir, "layout2"));
    await berthOk(["cache", "import", join(tmp.dir, "layout2")], { root });
    const p = await berthOk(["cache", "prune", "--filter", "until=24h"], { root });
    expect(p.stdout).toMatch(/^Total:\s+0B$/m);
    let r = await berth(["cache", "prune", "--keep-storage", "lots"], { root });
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toContain("--keep-storage");
    r = await berth(["cache", "prune", "--filter", "until=soon"], { root });
    expect([2, 5]).toContain(r.code);
    expectOneErrorLine(r.stderr);
  });

  it("cache import IMAGE reads the inline cache (moby.buildkit.cache.v0) of an image in the store", async () => {
    const root = join(tmp.dir, "cache-inline");
    const l1 = await makeTar([{ name: "from.txt", content: "from\n" }]);
    const l2 = await makeTar([{ name: "run.txt", content: "run\n" }]);
    const d1 = `sha256:${sha(l1)}`;
    const d2 = `sha256:${sha(l2)}`;
    const key = (x: string) => `sha256:${sha(`key:${x}`)}`;
    const records = [
      { digest: key("from"), layers: [{ layer: 0 }] },
      { digest: key("run"), layers: [{ layer: 1 }], inputs: [[{ link: 0 }]] },
    ];
    const config = JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [d1, d2] },
      history: [{ created_by: "FROM" }, { created_by: "RUN x" }],
      "moby.buildkit.cache.v0": Buffer.from(JSON.stringify(records)).toString("base64"),
    });
    const cfgName = `${sha(config)}.json`;
    const archive = await makeTar([
      { name: cfgName, content: config },
      { name: "l1/layer.tar", content: l1 },
      { name: "l2/layer.tar", content: l2 },
      { name: "manifest.json", content: JSON.stringify([{ Config: cfgName, RepoTags: ["inline:1"], Layers: ["l1/layer.tar", "l2/layer.tar"] }]) },
    ]);
    await berthOk(["load", "-q"], { root, input: archive });
    const r = await berthOk(["cache", "import", "inline:1"], { root });
    expect(r.stdout.trim().split("\n").sort()).toEqual([`${key("from")}\t${d1}`, `${key("run")}\t${`sha256:${sha(`${d1} ${d2}`)}`}`].sort());
    expect(r.stderr).toMatch(/\(inline\)/);
    // an image without inline cache says so
    await berthOk(["import", makeAppDir(join(tmp.dir, "noinline"), { "x": "x" }), "plain:1"], { root });
    const bad = await berth(["cache", "import", "plain:1"], { root });
    expect(bad.code).not.toBe(0);
    expect(expectOneErrorLine(bad.stderr)).toMatch(/no inline cache/);
  });

  it("cache import: unknown source is not found, a layout without a cache is invalid", async () => {
    const root = join(tmp.dir, "cache-bad");
    let r = await berth(["cache", "import", join(tmp.dir, "no-such-layout")], { root });
    expect(r.code).toBe(3);
    expectOneErrorLine(r.stderr);
    const bad = join(tmp.dir, "bad-layout");
    mkdirSync(join(bad, "blobs", "sha256"), { recursive: true });
    writeFileSync(join(bad, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(bad, "index.json"), "{ not json");
    r = await berth(["cache", "import", bad], { root });
    expect(r.code).toBe(5);
    expectOneErrorLine(r.stderr);
    expect(readdirSync(join(tmp.dir)).length).toBeGreaterThan(0);
  });
});

describe("berth fsck after a killed load (garbage is not damage)", () => {
  it("exits 0 and counts the garbage; the next ordinary write removes it", async () => {
    const root = join(tmp.dir, "killed");
    await berthOk(["import", makeRootfs(join(tmp.dir, "rootfs-killed")), "keep:1"], { root });
    // a layer of incompressible bytes, then a second one, then manifest.json: docker save's order
    const layer1 = await makeTar([{ name: "big.bin", content: randomBytes(4 << 20) }]);
    const layer2 = await makeTar([{ name: "more.bin", content: randomBytes(4 << 20) }]);
    const config = JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [`sha256:${sha(layer1)}`, `sha256:${sha(layer2)}`] } });
    const archive = await makeTar([
      { name: `${sha(layer1)}/layer.tar`, content: layer1 },
      { name: `${sha(layer2)}/layer.tar`, content: layer2 },
      { name: `${sha(config)}.json`, content: config },
      { name: "manifest.json", content: JSON.stringify([{ Config: `${sha(config)}.json`, RepoTags: ["killed:1"], Layers: [`${sha(layer1)}/layer.tar`, `${sha(layer2)}/layer.tar`] }]) },
    ]);
    const blobs = join(root, "blobs", "sha256");
    const child = spawn(process.execPath, [BERTH, "load"], { env: { ...process.env, BERTH_ROOT: root }, stdio: ["pipe", "ignore", "ignore"] });
    const exited = new Promise((r) => child.once("exit", r));
    // the kill below can come while this write is still queued: its EPIPE is expected
    child.stdin.on("error", () => {});
    // everything up to the middle of the second layer: the first layer's blob is stored under the load's lease
    child.stdin.write(archive.subarray(0, 512 + layer1.length + 512 + (2 << 20)));
    const deadline = Date.now() + 30_000;
    while (!existsSync(join(blobs, sha(layer1))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(join(blobs, sha(layer1)))).toBe(true);
    child.kill("SIGKILL");
    await exited;

    const r = await berth(["fsck"], { root });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^lease-dead: .*\(garbage\)$/m);
    expect(r.stdout).toContain(`blob-orphan: ${join(blobs, sha(layer1))}`);
    expect(r.stderr).toMatch(/fsck: 0 problem\(s\); [1-9]\d* garbage item\(s\), .* \(the next write removes them, or now: berth fsck --repair\)/);
    const report = JSON.parse((await berthOk(["fsck", "--format", "json"], { root })).stdout);
    expect(report.ok).toBe(true);
    expect(report.garbage.bytes).toBeGreaterThanOrEqual(layer1.length);

    // an ordinary write: the dead lease and what only it protected go
    await berthOk(["tag", "keep:1", "keep:2"], { root });
    const after = JSON.parse((await berthOk(["fsck", "--format", "json"], { root })).stdout);
    expect(after.problems).toEqual([]);
    expect(existsSync(join(blobs, sha(layer1)))).toBe(false);
    expect((await berthOk(["images", "--format", "{{.Repository}}:{{.Tag}}"], { root })).stdout.trim().split("\n").sort()).toEqual(["keep:1", "keep:2"]);
  });
});
