import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berth, berthOk, expectOneErrorLine, makeAppDir, makeRootfs, makeTar, tempDir } from "./helpers.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const root = join(tmp.dir, "store");
const run = (args: string[], opts: Parameters<typeof berth>[1] = {}) => berth(args, { root, ...opts });
const ok = (args: string[], opts: Parameters<typeof berth>[1] = {}) => berthOk(args, { root, ...opts });
const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

let baseId: string;
let appId: string;

/** `berth images -a` as sorted full IDs with tags: the store's visible state. */
async function state(r: string): Promise<string> {
  return (await berthOk(["images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"], { root: r })).stdout
    .trim()
    .split("\n")
    .sort()
    .join("\n");
}

beforeAll(async () => {
  const rootfs = makeRootfs(join(tmp.dir, "rootfs"));
  const app = makeAppDir(join(tmp.dir, "app"), { "srv/index.html": "<h1>hi</h1>\n", "srv/big.bin": new Uint8Array(200_000).fill(1) });
  baseId = (await ok(["import", rootfs, "base:1"])).stdout.trim();
  appId = (await ok(["import", app, "--base", "base:1", "-t", "app:1", "--change", "WORKDIR /srv"])).stdout.trim();
});

describe("berth save and load", () => {
  for (const format of ["both", "docker", "oci"] as const) {
    it(`round-trips --format ${format} through a file into a fresh store`, async () => {
      const out = join(tmp.dir, `app-${format}.tar`);
      const r = await ok(["save", "--format", format, "-o", out, "app:1"]);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/Saved 1 image\(s\), 1 tag\(s\), 2 layer\(s\)/);
      const names = (await import("node:child_process")).execFileSync("tar", ["-tf", out], { encoding: "utf8" });
      if (format !== "oci") expect(names).toContain("manifest.json");
      else expect(names).not.toContain("manifest.json");
      if (format !== "docker") expect(names).toContain("index.json");
      const fresh = join(tmp.dir, `fresh-${format}`);
      const l = await berthOk(["load", "-i", out], { root: fresh });
      expect(l.stdout).toBe(format === "oci" ? "Loaded image: app:1\n" : "Loaded image: app:1\n");
      expect(l.stderr).toMatch(/Loaded 1 image\(s\), 1 tag\(s\): 2 new layer\(s\)/);
      const [img] = JSON.parse((await berthOk(["image", "inspect", "app:1"], { root: fresh })).stdout);
      expect(img.Id).toBe(appId);
      expect(img.Config.WorkingDir).toBe("/srv");
      // loading again: every layer exists
      const again = await berthOk(["load", "-i", out], { root: fresh });
      expect(again.stderr).toMatch(/0 new layer\(s\) \(0B\), 2 existing/);
      expect(again.stderr).toMatch(/: Exists/);
    });
  }

  it("is deterministic, writes to stdout when it is not a terminal, loads from stdin and gzip", async () => {
    const a = await ok(["save", "app:1", "base:1"]);
    const b = await ok(["save", "base:1", "app:1"]);
    expect(a.stdoutBytes.length).toBeGreaterThan(200_000);
    expect(sha(a.stdoutBytes)).toBe(sha(b.stdoutBytes));
    const fresh = join(tmp.dir, "fresh-stdin");
    const l = await berthOk(["load", "-q"], { root: fresh, input: a.stdoutBytes });
    expect(l.stdout.split("\n").sort().join("\n").trim()).toBe("Loaded image: app:1\nLoaded image: base:1");
    expect(l.stderr).toBe("");
    const gz = await berthOk(["load", "--progress=none"], { root: join(tmp.dir, "fresh-gz"), input: gzipSync(a.stdoutBytes) });
    expect(gz.stdout).toContain("Loaded image: app:1");
    expect(await state(join(tmp.dir, "fresh-gz"))).toBe(await state(fresh));
  });

  it("saves by ID untagged and loads it as an ID", async () => {
    const r = await ok(["save", appId.slice(7, 19)]);
    const fresh = join(tmp.dir, "fresh-id");
    const l = await berthOk(["load"], { root: fresh, input: r.stdoutBytes });
    expect(l.stdout).toBe(`Loaded image ID: ${appId}\n`);
  });

  it("keeps a tag that names another image unless --overwrite-tags", async () => {
    const archive = (await ok(["save", "app:1"])).stdoutBytes;
    const other = join(tmp.dir, "conflict");
    const rootfs = join(tmp.dir, "rootfs");
    const otherId = (await berthOk(["import", rootfs, "app:1", "--change", "LABEL other=1"], { root: other })).stdout.trim();
    let l = await berthOk(["load"], { root: other, input: archive });
    expect(l.stderr).toMatch(/warning: tag app:1 names [0-9a-f]{12} already; kept it there/);
    expect((await berthOk(["image", "inspect", "-f", "{{.Id}}", "app:1"], { root: other })).stdout.trim()).toBe(otherId);
    l = await berthOk(["load", "--overwrite-tags"], { root: other, input: archive });
    expect(l.stderr).toMatch(/tag app:1 moved from/);
    expect((await berthOk(["image", "inspect", "-f", "{{.Id}}", "app:1"], { root: other })).stdout.trim()).toBe(appId);
  });

  it("--with-parents carries the parent chain; load -i restores it", async () => {
    const out = join(tmp.dir, "with-parents.tar");
    const r = await ok(["save", "--with-parents", "-o", out, "app:1"]);
    expect(r.stderr).toMatch(/parent chain \(1 intermediate config\(s\)\)/);
    const fresh = join(tmp.dir, "fresh-parents");
    const l = await berthOk(["load", "-i", out], { root: fresh });
    expect(l.stderr).toMatch(/Restored the build cache's parent chain: 1 intermediate image\(s\), 1 parent link\(s\)/);
    expect((await berthOk(["image", "inspect", "-f", "{{.Parent}}", "app:1"], { root: fresh })).stdout.trim()).toBe(baseId);
    expect((await berthOk(["images", "-a", "-q", "--no-trunc"], { root: fresh })).stdout).toContain(baseId);
  });

  it("save to a pipe whose reader goes away: exit 6 with one line; images | head: exit 0", async () => {
    const { execFileSync } = await import("node:child_process");
    const env = { ...process.env, BERTH_ROOT: root };
    const script = `"${process.execPath}" "${(await import("./helpers.js")).BERTH}"`;
    const out = execFileSync("bash", ["-c", `${script} save --progress=none app:1 | head -c 10 >/dev/null; echo "rc=\${PIPESTATUS[0]}"`], { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(out.trim()).toBe("rc=6");
    const r = execFileSync("bash", ["-c", `${script} images | head -n 1 >/dev/null; echo "rc=\${PIPESTATUS[0]}"`], { env, encoding: "utf8" });
    expect(r.trim()).toBe("rc=0");
  });

  it("save: unknown image, bad format, missing directory", async () => {
    const out = join(tmp.dir, "never.tar");
    let r = await run(["save", "-o", out, "nothere:1"]);
    expect(r.code).toBe(3);
    expect(expectOneErrorLine(r.stderr)).toMatch(/^berth: save: .*nothere:1/);
    expect(existsSync(out)).toBe(false);
    r = await run(["save", "--format", "zip", "-o", out, "app:1"]);
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toContain("invalid --format");
    r = await run(["save", "-o", join(tmp.dir, "no", "such", "dir", "x.tar"), "app:1"]);
    expect(r.code).toBe(3);
    expect(expectOneErrorLine(r.stderr)).toMatch(/no such file or directory/);
    r = await run(["save"]);
    expect(r.code).toBe(2);
    expect(readdirSync(tmp.dir).filter((n) => n.includes(".berth-"))).toEqual([]);
  });
});

describe("berth load refuses bad and hostile input, leaving the store as it was", () => {
  let before: string;
  beforeAll(async () => {
    before = await state(root);
  });

  const expectUnchanged = async () => {
    expect(await state(root)).toBe(before);
    const f = await ok(["fsck"]);
    expect(f.stderr).toMatch(/fsck: 0 problem\(s\)/);
  };

  it("a missing file: exit 3", async () => {
    const r = await run(["load", "-i", join(tmp.dir, "missing.tar")]);
    expect(r.code).toBe(3);
    expect(expectOneErrorLine(r.stderr)).toMatch(/^berth: load: .*missing\.tar: no such file or directory$/);
  });

  it("garbage and truncated archives: exit 5", async () => {
    let r = await run(["load"], { input: "definitely not a tar\n".repeat(100) });
    expect(r.code).toBe(5);
    expectOneErrorLine(r.stderr.split("\n").filter((l) => !/: Failed/.test(l)).join("\n"));
    const good = (await ok(["save", "app:1"])).stdoutBytes;
    r = await run(["load", "--progress=none"], { input: good.subarray(0, good.length - 150_000) });
    expect(r.code).toBe(5);
    expectOneErrorLine(r.stderr);
    r = await run(["load", "--progress=none"], { input: "" });
    expect(r.code).toBe(5);
    expectOneErrorLine(r.stderr);
    await expectUnchanged();
  });

  it("an entry named ../x: exit 5, nothing written outside or inside", async () => {
    const tar = await makeTar([
      { name: "../x", content: "escape" },
      { name: "manifest.json", content: "[]" },
    ]);
    const file = join(tmp.dir, "evil.tar");
    writeFileSync(file, tar);
    const r = await run(["--debug", "load", "--progress=none", "-i", file]);
    expect(r.code).toBe(5);
    expect(r.stderr.split("\n")[0]).toMatch(/^berth: load: .*\.\.\/x.*\[ERR_UNSAFE_PATH\]$/);
    expect(existsSync(join(tmp.dir, "x"))).toBe(false);
    const plain = await run(["load", "--progress=none", "-i", file]);
    expectOneErrorLine(plain.stderr);
    await expectUnchanged();
  });

  it("a manifest.json naming a layer that is not in the archive: exit 5", async () => {
    const config = JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [`sha256:${"ab".repeat(32)}`] },
      history: [{ created_by: "x" }],
    });
    const configName = `${sha(config)}.json`;
    const tar = await makeTar([
      { name: configName, content: config },
      { name: "manifest.json", content: JSON.stringify([{ Config: configName, RepoTags: ["evil:1"], Layers: ["missing/layer.tar"] }]) },
    ]);
    const r = await run(["--debug", "load", "--progress=none"], { input: tar });
    expect(r.code).toBe(5);
    expect(r.stderr.split("\n")[0]).toMatch(/missing\/layer\.tar.*\[ERR_[A-Z_]+\]$/);
    await expectUnchanged();
  });

  it("a layer whose content does not match its DiffID: exit 5", async () => {
    const layer = await makeTar([{ name: "hello.txt", content: "hello" }]);
    const config = JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [`sha256:${"cd".repeat(32)}`] },
    });
    const configName = `${sha(config)}.json`;
    const tar = await makeTar([
      { name: configName, content: config },
      { name: "l1/layer.tar", content: layer },
      { name: "manifest.json", content: JSON.stringify([{ Config: configName, RepoTags: ["evil:2"], Layers: ["l1/layer.tar"] }]) },
    ]);
    const r = await run(["--debug", "load", "--progress=none"], { input: tar });
    expect(r.code).toBe(5);
    expect(r.stderr.split("\n")[0]).toMatch(/\[ERR_[A-Z_]+\]$/);
    await expectUnchanged();
  });

  it("a symlink pointing outside the archive: exit 5", async () => {
    const tar = await makeTar([
      { name: "l1/layer.tar", type: "symlink", linkname: "../../etc/passwd" },
      { name: "manifest.json", content: "[]" },
    ]);
    const r = await run(["load", "--progress=none"], { input: tar });
    expect(r.code).toBe(5);
    expectOneErrorLine(r.stderr);
    await expectUnchanged();
  });

  it("an index naming its child 1,000 times, 4 levels deep (a few kB): exit 5 with ERR_INDEX_LIMIT, not a hang", { timeout: 60_000 }, async () => {
    const IDX = "application/vnd.oci.image.index.v1+json";
    const items = [{ name: "oci-layout", content: '{"imageLayoutVersion":"1.0.0"}' }];
    let child = JSON.stringify({ schemaVersion: 2, mediaType: IDX, manifests: [] });
    items.push({ name: `blobs/sha256/${sha(child)}`, content: child });
    for (let level = 0; level < 4; level++) {
      const d = { mediaType: IDX, digest: `sha256:${sha(child)}`, size: Buffer.byteLength(child) };
      child = JSON.stringify({ schemaVersion: 2, mediaType: IDX, manifests: Array(1000).fill(d) });
      items.push({ name: `blobs/sha256/${sha(child)}`, content: child });
    }
    const top = { mediaType: IDX, digest: `sha256:${sha(child)}`, size: Buffer.byteLength(child), annotations: { "org.opencontainers.image.ref.name": "bomb:1" } };
    items.push({ name: "index.json", content: JSON.stringify({ schemaVersion: 2, manifests: [top] }) });
    const file = join(tmp.dir, "index-bomb.tar");
    writeFileSync(file, await makeTar(items));
    const r = await run(["--debug", "load", "--progress=none", "-i", file]);
    expect(r.code).toBe(5);
    expect(r.stderr.split("\n")[0]).toMatch(/^berth: load: .*names \d+ descriptors, more than the limit of \d+ \[ERR_INDEX_LIMIT\]$/);
    await expectUnchanged();
  });

  it("an OCI ref name that is a number, a manifest.json Parent that is not a string: exit 5 naming the field, from a file and stdin", async () => {
    const config = JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, history: [] });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${sha(config)}`, size: config.length },
      layers: [],
    });
    const desc = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${sha(manifest)}`, size: manifest.length, annotations: { "org.opencontainers.image.ref.name": 5 } };
    const oci = await makeTar([
      { name: "oci-layout", content: '{"imageLayoutVersion":"1.0.0"}' },
      { name: `blobs/sha256/${sha(config)}`, content: config },
      { name: `blobs/sha256/${sha(manifest)}`, content: manifest },
      { name: "index.json", content: JSON.stringify({ schemaVersion: 2, manifests: [desc] }) },
    ]);
    const legacy = await makeTar([
      { name: `${sha(config)}.json`, content: config },
      { name: "manifest.json", content: JSON.stringify([{ Config: `${sha(config)}.json`, RepoTags: ["p:1"], Layers: [], Parent: 5 }]) },
    ]);
    for (const [tar, field] of [[oci, /manifests\[0\]\.annotations\["org\.opencontainers\.image\.ref\.name"\] must be a string, got number/], [legacy, /manifest\.json\[0\]: Parent must be a string/]] as const) {
      const file = join(tmp.dir, "wrong-type.tar");
      writeFileSync(file, tar);
      for (const r of [await run(["load", "--progress=none", "-i", file]), await run(["load", "--progress=none"], { input: tar })]) {
        expect(r.code).toBe(5);
        expect(expectOneErrorLine(r.stderr)).toMatch(field);
      }
    }
    await expectUnchanged();
  });

  it("SIGTERM while a load is under way ends it at once with exit 130 and says what was kept: nothing", { timeout: 60_000 }, async () => {
    const saved = (await ok(["save", "app:1"])).stdoutBytes;
    const other = join(tmp.dir, "sigterm-store");
    let sent = 0;
    const r = await berth(["load", "--progress=none"], {
      root: other,
      onSpawn: (child) => {
        // half the archive, and the rest never comes: the load waits, mid-entry
        child.stdin!.write(saved.subarray(0, saved.length >> 1));
        setTimeout(() => {
          sent = Date.now();
          child.kill("SIGTERM");
        }, 1500);
      },
    });
    // (the 10 s fallback exits 130 too, but without a word)
    expect(Date.now() - sent).toBeLessThan(8_000);
    expect(r.code).toBe(130);
    expect(expectOneErrorLine(r.stderr)).toBe("berth: load: interrupted (SIGTERM); nothing was kept");
    expect(await state(other)).toBe("");
    expect((await berthOk(["fsck"], { root: other })).stderr).toMatch(/fsck: 0 problem\(s\)/);
  });

  it("stdin that is a terminal is refused (usage), unknown options exit 2", async () => {
    const r = await run(["load", "--bogus"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
  });
});

describe("berth digest on saved blobs", () => {
  it("the layer blobs of a saved OCI archive have the DiffIDs inspect reports", async () => {
    const out = join(tmp.dir, "digest-src.tar");
    await ok(["save", "--format", "oci", "-o", out, "app:1"]);
    const dir = join(tmp.dir, "digest-x");
    (await import("node:fs")).mkdirSync(dir);
    (await import("node:child_process")).execFileSync("tar", ["-xf", out, "-C", dir]);
    const [img] = JSON.parse((await ok(["image", "inspect", "app:1"])).stdout);
    const blobs = readdirSync(join(dir, "blobs", "sha256")).map((n) => join(dir, "blobs", "sha256", n));
    const rows = JSON.parse((await ok(["digest", "--format", "json", ...blobs])).stdout) as Array<{ File: string; Digest: string; DiffID: string }>;
    for (const r of rows) expect(r.Digest).toBe(`sha256:${r.File.split("/").pop()}`);
    const diffIds = new Set(rows.map((r) => r.DiffID));
    for (const d of img.RootFS.Layers) expect(diffIds.has(d)).toBe(true);
    const chain = (await ok(["digest", "--chain", ...img.RootFS.Layers])).stdout.trim().split("\n");
    expect(chain[0]).toBe(img.RootFS.Layers[0]);
    expect(chain[1]).toBe(`sha256:${sha(`${img.RootFS.Layers[0]} ${img.RootFS.Layers[1]}`)}`);
    expect(readFileSync(out).length).toBeGreaterThan(0);
  });
});
