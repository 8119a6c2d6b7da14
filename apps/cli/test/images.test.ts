import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berth, berthOk, expectOneErrorLine, makeAppDir, makeRootfs, tempDir } from "./helpers.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const root = join(tmp.dir, "store");
const run = (args: string[], opts: Parameters<typeof berth>[1] = {}) => berth(args, { root, ...opts });
const ok = (args: string[], opts: Parameters<typeof berth>[1] = {}) => berthOk(args, { root, ...opts });

let rootfs: string;
let appDir: string;
let baseId: string;
let appId: string;

const HEX12 = /^[0-9a-f]{12}$/;

beforeAll(async () => {
  rootfs = makeRootfs(join(tmp.dir, "rootfs"));
  appDir = makeAppDir(join(tmp.dir, "app"), { "app/hello.txt": "hello\n", "app/data.bin": new Uint8Array(5000).fill(7) });
  baseId = (await ok(["import", rootfs, "base:1", "--change", 'CMD ["/bin/sh"]'])).stdout.trim();
  appId = (
    await ok([
      "import",
      appDir,
      "--base",
      "base:1",
      "-t",
      "app:1",
      "--change",
      "ENV MODE=prod A=1",
      "--change",
      "WORKDIR /app",
      "--change",
      "LABEL org.example.x=y",
      "--change",
      "EXPOSE 8080",
      "--change",
      "USER 1000",
      "--change",
      'ENTRYPOINT ["/bin/sh", "-c"]',
      "--change",
      'CMD ["cat /app/hello.txt"]',
    ])
  ).stdout.trim();
});

describe("berth import", () => {
  it("prints the new image ID and applies --change like docker import", async () => {
    expect(baseId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(appId).toMatch(/^sha256:[0-9a-f]{64}$/);
    const [img] = JSON.parse((await ok(["image", "inspect", "app:1"])).stdout);
    expect(img.Id).toBe(appId);
    expect(img.Parent).toBe(baseId);
    expect(img.Config).toMatchObject({
      Env: ["MODE=prod", "A=1"],
      WorkingDir: "/app",
      Labels: { "org.example.x": "y" },
      ExposedPorts: { "8080/tcp": {} },
      User: "1000",
      Entrypoint: ["/bin/sh", "-c"],
      Cmd: ["cat /app/hello.txt"],
    });
    expect(img.RootFS.Layers).toHaveLength(2);
  });

  it("makes the same DiffID from the same directory, and the same ID with SOURCE_DATE_EPOCH", async () => {
    const env = { SOURCE_DATE_EPOCH: "1700000000" };
    const a = (await ok(["import", appDir, "det:a"], { env })).stdout.trim();
    const b = (await ok(["import", appDir, "det:b"], { env })).stdout.trim();
    expect(a).toBe(b);
    const [img] = JSON.parse((await ok(["image", "inspect", "det:a"])).stdout);
    expect(img.Created).toBe("2023-11-14T22:13:20Z");
    // a rootfs tar made from the same tree by GNU tar loads as a layer too
    const tarFile = join(tmp.dir, "app.tar");
    execFileSync("tar", ["-C", appDir, "-cf", tarFile, "."]);
    const c = (await ok(["import", tarFile, "det:tar"])).stdout.trim();
    expect(c).toMatch(/^sha256:/);
    await ok(["rmi", "det:a", "det:b", "det:tar"]);
  });

  it("imports a tar from stdin", async () => {
    const tarBytes = execFileSync("tar", ["-C", appDir, "-c", "."]);
    const r = await ok(["import", "-", "stdin:1"], { input: tarBytes });
    expect(r.stdout.trim()).toMatch(/^sha256:/);
    await ok(["rmi", "stdin:1"]);
  });

  it("reports bad input with the right exit codes", async () => {
    let r = await run(["import", join(tmp.dir, "missing-dir"), "x:1"]);
    expect(r.code).toBe(3);
    expect(expectOneErrorLine(r.stderr)).toMatch(/^berth: import: .*missing-dir: no such file or directory/);

    r = await run(["import", appDir, "--change", "FROM scratch"]);
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toContain("unsupported instruction FROM");

    r = await run(["import", appDir, "Not A Ref"]);
    expect(r.code).toBe(5);
    expect(expectOneErrorLine(r.stderr)).toMatch(/^berth: import: invalid reference/);

    r = await run(["import", appDir, "--base", "nothere:1"]);
    expect(r.code).toBe(3);
    expect(expectOneErrorLine(r.stderr)).toMatch(/nothere:1/);

    r = await run(["import", appDir, "--platform", "linux"]);
    expect(r.code).toBe(2);

    r = await run(["import"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("missing required argument");

    const notTar = join(tmp.dir, "not-a-tar");
    writeFileSync(notTar, "this is not a tar archive at all\n".repeat(40));
    r = await run(["import", notTar, "bad:1"]);
    expect(r.code).toBe(5);
    expectOneErrorLine(r.stderr);
  });
});

describe("berth images", () => {
  it("lists tagged images with docker's columns, short IDs, human sizes and relative times", async () => {
    const r = await ok(["images"]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    const rows = lines.slice(1).map((l) => l.split(/\s{3,}/));
    const app = rows.find((c) => c[0] === "app");
    expect(app).toBeDefined();
    expect(app![1]).toBe("1");
    expect(app![2]).toBe(appId.slice(7, 19));
    expect(app![2]).toMatch(HEX12);
    expect(app![3]).toMatch(/(second|seconds|minute|minutes) ago$/);
    expect(app![4]).toMatch(/^\d+(\.\d+)?(B|kB|MB)$/);
  });

  it("-q prints short IDs, --no-trunc full ones, --digests the manifest digest", async () => {
    const q = (await ok(["images", "-q"])).stdout.trim().split("\n");
    expect(q).toContain(appId.slice(7, 19));
    for (const id of q) expect(id).toMatch(HEX12);
    const full = (await ok(["images", "-q", "--no-trunc"])).stdout.trim().split("\n");
    expect(full).toContain(appId);
    const d = (await ok(["images", "--digests"])).stdout.trimEnd().split("\n");
    expect(d[0]).toMatch(/^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+CREATED\s+SIZE$/);
    const [img] = JSON.parse((await ok(["image", "inspect", "app:1"])).stdout);
    expect(d.find((l) => l.startsWith("app "))).toContain(img.ManifestDigest);
  });

  it("shows untagged intermediate images only with -a; dangling filter", async () => {
    // untag the base: it becomes an intermediate (it has a child)
    await ok(["tag", "base:1", "base:keep"]);
    expect((await ok(["rmi", "base:1"])).stdout).toBe("Untagged: base:1\n");
    expect((await ok(["images", "-q", "--no-trunc"])).stdout).toContain(baseId);
    // removing the last tag of an image with children only untags it (moby)
    expect((await ok(["rmi", "base:keep"])).stdout).toBe("Untagged: base:keep\n");
    expect((await ok(["images", "-q", "--no-trunc"])).stdout).not.toContain(baseId);
    expect((await ok(["images", "-a", "-q", "--no-trunc"])).stdout).toContain(baseId);
    const aTable = (await ok(["images", "-a"])).stdout;
    expect(aTable).toMatch(new RegExp(`<none>\\s+<none>\\s+${baseId.slice(7, 19)}`));
    // dangling=true lists untagged images without children (none here), dangling=false the tagged ones
    expect((await ok(["images", "--filter", "dangling=true", "-q", "--no-trunc"])).stdout).not.toContain(baseId);
    expect((await ok(["images", "--filter", "dangling=false", "-q", "--no-trunc"])).stdout).toContain(appId);
    await ok(["tag", baseId, "base:1"]);
  });

  it("filters by reference glob, before and since", async () => {
    await ok(["tag", "app:1", "other/thing:2"]);
    const ref = (await ok(["images", "--filter", "reference=app", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.trim().split("\n");
    expect(ref).toEqual(["app:1"]);
    const ref2 = (await ok(["images", "--filter", "reference=other/*:2", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.trim();
    expect(ref2).toBe("other/thing:2");
    const byArg = (await ok(["images", "other/thing", "--format", "{{.Repository}}"])).stdout.trim();
    expect(byArg).toBe("other/thing");
    const before = (await ok(["images", "--filter", "before=app:1", "-q", "--no-trunc"])).stdout;
    expect(before).toContain(baseId);
    expect(before).not.toContain(appId);
    const since = (await ok(["images", "--filter", "since=base:1", "-q", "--no-trunc"])).stdout;
    expect(since).toContain(appId);
    expect(since).not.toContain(baseId);
    await ok(["rmi", "other/thing:2"]);
  });

  it("--format json gives stable objects; templates and table templates work", async () => {
    const lines = (await ok(["images", "--format", "json"])).stdout.trim().split("\n").map((l) => JSON.parse(l));
    const app = lines.find((o) => o.Repository === "app");
    expect(app).toMatchObject({ ID: appId, Repository: "app", Tag: "1", Tags: ["app:1"] });
    expect(app.ManifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(typeof app.Size).toBe("number");
    expect(Date.parse(app.CreatedAt)).toBeGreaterThan(0);
    const ids = (await ok(["images", "--format", "{{.ID}}"])).stdout.trim().split("\n");
    expect(ids).toContain(appId.slice(7, 19));
    const t = (await ok(["images", "--format", "table {{.Repository}}\\t{{.ID}}"])).stdout.trimEnd().split("\n");
    expect(t[0]).toMatch(/^REPOSITORY\s+IMAGE ID$/);
    expect(t.some((l) => /^app\s+[0-9a-f]{12}$/.test(l))).toBe(true);
  });

  it("rejects bad filters and flags with usage exit 2", async () => {
    let r = await run(["images", "--filter", "color=blue"]);
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toContain("invalid filter 'color'");
    r = await run(["images", "--filter", "dangling"]);
    expect(r.code).toBe(2);
    r = await run(["images", "--filter", "dangling=maybe"]);
    expect(r.code).toBe(2);
    r = await run(["images", "--bogus"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
    r = await run(["images", "--filter", "before=nothere:1"]);
    expect(r.code).toBe(3);
    expectOneErrorLine(r.stderr);
  });

  it("works on an empty store", async () => {
    const r = await berthOk(["images"], { root: join(tmp.dir, "empty") });
    expect(r.stdout.trim()).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
  });
});

describe("berth image inspect", () => {
  it("prints docker's fields plus ManifestDigest; --format templates", async () => {
    const r = await ok(["image", "inspect", "app:1", "base:1"]);
    const arr = JSON.parse(r.stdout);
    expect(arr).toHaveLength(2);
    for (const key of ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Config", "Architecture", "Os", "Size", "RootFS", "Metadata", "ManifestDigest"]) {
      expect(arr[0]).toHaveProperty(key);
    }
    expect(arr[0].RootFS.Type).toBe("layers");
    expect(arr[0].RepoTags).toEqual(["app:1"]);
    expect((await ok(["image", "inspect", "--format", "json", "app:1"])).stdout).toBe((await ok(["image", "inspect", "app:1"])).stdout);
    expect((await ok(["image", "inspect", "-f", "{{.Id}} {{.Os}}", "app:1"])).stdout.trim()).toBe(`${appId} linux`);
    expect((await ok(["inspect", "-f", "{{json .RootFS.Layers}}", appId.slice(7, 15)])).stdout.trim()).toBe(JSON.stringify(arr[0].RootFS.Layers));
  });

  it("unknown image: exit 3, one line, code with --debug", async () => {
    let r = await run(["image", "inspect", "nope:1"]);
    expect(r.code).toBe(3);
    expect(expectOneErrorLine(r.stderr)).toBe("berth: image inspect: no such image: nope:1");
    r = await run(["--debug", "image", "inspect", "nope:1"]);
    expect(r.code).toBe(3);
    expect(r.stderr.split("\n")[0]).toMatch(/\[ERR_[A-Z_]*NOT_FOUND\]$/);
    // sha256:zz is a valid name (repository sha256, tag zz), so that is not found; "a b" is no reference at all
    r = await run(["image", "inspect", "sha256:zz"]);
    expect(r.code).toBe(3);
    r = await run(["image", "inspect", "a b"]);
    expect(r.code).toBe(5);
    expectOneErrorLine(r.stderr);
    r = await run(["image", "inspect"]);
    expect(r.code).toBe(2);
  });
});

describe("berth history", () => {
  it("lists history newest first, with image IDs along the parent chain", async () => {
    const r = await ok(["history", "app:1"]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(new RegExp(`^${appId.slice(7, 19)}\\s`));
    expect(lines[2]).toMatch(new RegExp(`^${baseId.slice(7, 19)}\\s`));
    const full = (await ok(["history", "--no-trunc", "-q", "app:1"])).stdout.trim().split("\n");
    expect(full).toEqual([appId, baseId]);
    const json = (await ok(["history", "--format", "json", "app:1"])).stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(json[0].ID).toBe(appId);
    expect(json[1].Comment).toBe("Imported from rootfs");
  });

  it("unknown image: exit 3", async () => {
    const r = await run(["history", "nope"]);
    expect(r.code).toBe(3);
    expectOneErrorLine(r.stderr);
  });
});

describe("berth tag", () => {
  it("tags by name, ID and prefix; bad references are invalid input", async () => {
    await ok(["tag", "app:1", "localhost:5000/team/app:v2"]);
    await ok(["tag", appId, "app:byid"]);
    await ok(["image", "tag", appId.slice(7, 20), "app:byprefix"]);
    const tags = JSON.parse((await ok(["image", "inspect", "app:1"])).stdout)[0].RepoTags;
    expect(tags).toEqual(expect.arrayContaining(["app:1", "app:byid", "app:byprefix", "localhost:5000/team/app:v2"]));
    // docker reads an upper-case first component as a registry host, so UPPER/case is valid; Upper is not
    await ok(["tag", "app:1", "UPPER/case"]);
    await ok(["rmi", "UPPER/case"]);
    let r = await run(["tag", "app:1", "Upper"]);
    expect(r.code).toBe(5);
    expect(expectOneErrorLine(r.stderr)).toMatch(/^berth: tag: invalid reference/);
    r = await run(["tag", "nothere:1", "x:1"]);
    expect(r.code).toBe(3);
    r = await run(["tag", "app:1"]);
    expect(r.code).toBe(2);
    await ok(["rmi", "app:byid", "app:byprefix", "localhost:5000/team/app:v2"]);
  });
});

describe("berth rmi and image prune", () => {
  it("untags first, refuses IDs with several tags and images with children, -f forces", async () => {
    const dir = makeAppDir(join(tmp.dir, "rmi"), { "x.txt": "rmi test\n" });
    const id = (await ok(["import", dir, "--base", "base:1", "-t", "rm:1", "-t", "rm:2"])).stdout.trim();
    // by ID with two tags: conflict
    let r = await run(["rmi", id]);
    expect(r.code).toBe(4);
    expect(expectOneErrorLine(r.stderr)).toMatch(/referenced in multiple repositories/);
    // by name: untag only
    r = await ok(["rmi", "rm:2"]);
    expect(r.stdout).toBe("Untagged: rm:2\n");
    // base has children: deleting it by ID is a conflict
    r = await run(["rmi", baseId]);
    expect(r.code).toBe(4);
    expect(expectOneErrorLine(r.stderr)).toMatch(/dependent child images/);
    // by name, last tag: untagged and deleted
    r = await ok(["rmi", "rm:1"]);
    // moby's lines: untagged, the image, then the layers that went with it (top first)
    expect(r.stdout).toMatch(new RegExp(`^Untagged: rm:1\nDeleted: ${id}\nDeleted: sha256:[0-9a-f]{64}\n$`));
    // two tags by ID with -f
    const id2 = (await ok(["import", dir, "--base", "base:1", "-t", "rm:3", "-t", "rm:4"])).stdout.trim();
    r = await ok(["rmi", "-f", id2.slice(7, 19)]);
    expect(r.stdout).toMatch(new RegExp(`^Untagged: rm:3\nUntagged: rm:4\nDeleted: ${id2}\n(Deleted: sha256:[0-9a-f]{64}\n)*$`));
  });

  it("unknown, ambiguous and invalid names; the other names still go", async () => {
    let r = await run(["rmi", "nope:1"]);
    expect(r.code).toBe(3);
    expect(expectOneErrorLine(r.stderr)).toMatch(/^berth: rmi: .*nope:1/);
    r = await run(["rmi", "Bad Ref"]);
    expect(r.code).toBe(5);
    // make two images whose IDs start with the same hex digit, then use that digit as a prefix
    const dir = makeAppDir(join(tmp.dir, "amb"), { "a.txt": "a\n" });
    const byFirst = new Map<string, string>();
    let shared: string | undefined;
    for (const id of (await ok(["images", "-a", "-q", "--no-trunc"])).stdout.trim().split("\n")) byFirst.set(id[7]!, id);
    for (let i = 0; !shared && i < 40; i++) {
      const id = (await ok(["import", dir, `amb:${i}`, "--change", `LABEL n=${i}`])).stdout.trim();
      if (byFirst.has(id[7]!)) shared = id[7];
      else byFirst.set(id[7]!, id);
    }
    expect(shared).toBeDefined();
    r = await run(["image", "inspect", shared!]);
    expect(r.code).toBe(5);
    expect(expectOneErrorLine(r.stderr)).toMatch(/more than one image|ambiguous/);
    r = await run(["rmi", shared!]);
    expect(r.code).toBe(5);
    // several names: each failure reported, the good ones removed
    r = await run(["rmi", "nope:2", "amb:0"]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain("Untagged: amb:0");
    expect(r.stderr).toContain("nope:2");
  });

  it("image prune removes dangling images, -a unused ones, --filter until", async () => {
    const dir = makeAppDir(join(tmp.dir, "prune"), { "p.txt": "prune\n" });
    const id = (await ok(["import", dir, "prune:1"])).stdout.trim();
    await ok(["rmi", "--no-prune", "prune:1"]).catch(() => undefined);
    // re-create dangling: import without a tag
    const dangling = (await ok(["import", dir, "--change", "LABEL dangling=1"])).stdout.trim();
    expect(id).toMatch(/^sha256:/);
    // an old dangling image (created 2023) goes with until=24h; the recent one stays
    const old = (await ok(["import", dir, "--change", "LABEL old=1"], { env: { SOURCE_DATE_EPOCH: "1700000000" } })).stdout.trim();
    let r = await ok(["image", "prune", "--filter", "until=24h"]);
    expect(r.stdout).toContain(`deleted: ${old}`);
    expect(r.stdout).not.toContain(dangling);
    r = await ok(["image", "prune", "-f"]);
    expect(r.stdout).toContain(`deleted: ${dangling}`);
    expect(r.stdout).toMatch(/Total reclaimed space: \d/);
    expect((await ok(["images", "-a", "-q", "--no-trunc"])).stdout).not.toContain(dangling);
    // app:1 survives a plain prune
    expect((await ok(["images", "-q", "--no-trunc"])).stdout).toContain(appId);
    r = await run(["image", "prune", "--filter", "until=yesterday-ish"]);
    expect(r.code).toBe(2);
  });

  it("image prune -a removes everything unused, in an isolated store", async () => {
    const root2 = join(tmp.dir, "prune-all");
    const dir = makeAppDir(join(tmp.dir, "prune2"), { "q.txt": "q\n" });
    mkdirSync(root2);
    await berthOk(["import", rootfs, "b:1"], { root: root2 });
    await berthOk(["import", dir, "--base", "b:1", "c:1"], { root: root2 });
    const r = await berthOk(["image", "prune", "-a"], { root: root2 });
    expect(r.stdout).toContain("untagged: c:1");
    expect(r.stdout).toContain("untagged: b:1");
    expect(r.stdout).toMatch(/Total reclaimed space: [1-9]/);
    expect((await berthOk(["images", "-a", "-q"], { root: root2 })).stdout).toBe("");
  });
});
