/**
 * `berth commit` and `berth diff` as real subprocesses over a temp store:
 * an edited rootfs committed on an imported base, the per-layer and
 * two-image diffs in docker diff's format and as JSON, and the errors.
 */
import { execFileSync } from "node:child_process";
import { lutimesSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { berth, berthOk, expectOneErrorLine, makeRootfs, tempDir } from "./helpers.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const root = join(tmp.dir, "store");

/** Every mtime 0, as an unpack of a berth-imported layer leaves them. */
function asUnpacked(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) asUnpacked(p);
    if (e.isSymbolicLink()) lutimesSync(p, 0, 0);
    else utimesSync(p, 0, 0);
  }
}

describe("berth commit and berth diff", () => {
  it("commits an edited rootfs as one layer and diffs it", async () => {
    const rootfs = makeRootfs(join(tmp.dir, "rootfs"));
    mkdirSync(join(rootfs, "data", "sub"), { recursive: true });
    writeFileSync(join(rootfs, "data", "sub", "old"), "old");
    writeFileSync(join(rootfs, "gone.txt"), "bye");
    await berthOk(["import", rootfs, "base:1"], { root });
    const edit = join(tmp.dir, "edit");
    execFileSync("cp", ["-a", rootfs, edit]);
    asUnpacked(edit);
    rmSync(join(edit, "gone.txt"));
    rmSync(join(edit, "data"), { recursive: true });
    mkdirSync(join(edit, "data"));
    writeFileSync(join(edit, "data", "new"), "new");
    writeFileSync(join(edit, "etc", "hostname"), "committed\n");

    const r = await berthOk(["commit", edit, "--base", "base:1", "-t", "edited:1", "--change", 'CMD ["/bin/sh"]', "-m", "my edit"], { root });
    const id = r.stdout.trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.stderr).toMatch(/1 added, 3 changed, 2 removed/);
    const inspect = JSON.parse((await berthOk(["image", "inspect", "edited:1"], { root })).stdout) as Array<{ Id: string; Config: { Cmd: string[] }; RootFS: { Layers: string[] } }>;
    expect(inspect[0]!.Id).toBe(id);
    expect(inspect[0]!.Config.Cmd).toEqual(["/bin/sh"]);
    expect(inspect[0]!.RootFS.Layers).toHaveLength(2);

    const expected = "C /data\nA /data/new\nD /data/sub\nC /etc\nC /etc/hostname\nD /gone.txt\n";
    expect((await berthOk(["diff", "--layer", "-1", "edited:1"], { root })).stdout).toBe(expected);
    expect((await berthOk(["diff", "base:1", "edited:1"], { root })).stdout).toBe(expected);
    const all = (await berthOk(["diff", "edited:1"], { root })).stdout;
    expect(all).toMatch(/^# layer 0 sha256:[0-9a-f]{64}\n/);
    expect(all).toContain("A /bin/busybox\n");
    expect(all).toContain(`# layer 1 ${inspect[0]!.RootFS.Layers[1]} berth commit edit\n${expected}`);
    const json = JSON.parse((await berthOk(["diff", "edited:1", "--format", "json"], { root })).stdout) as { id: string; layers: Array<{ changes: Array<{ path: string; kind: string }> }> };
    expect(json.id).toBe(id);
    expect(json.layers[1]!.changes).toContainEqual({ path: "gone.txt", kind: "removed" });
    const two = JSON.parse((await berthOk(["diff", "base:1", "edited:1", "--format", "json"], { root })).stdout) as { changes: unknown[] };
    expect(two.changes).toHaveLength(6);
    // history: the commit's step with its message
    expect((await berthOk(["history", "--no-trunc", "edited:1"], { root })).stdout).toMatch(/berth commit edit.*my edit/);
  });

  it("refuses bad input with one error line", async () => {
    const missing = await berth(["commit", join(tmp.dir, "nope"), "--base", "base:1"], { root });
    expect(missing.code).not.toBe(0);
    expect(expectOneErrorLine(missing.stderr)).toMatch(/not a directory/);
    const badMap = await berth(["commit", tmp.dir, "--uidmap", "0:1"], { root });
    expect(badMap.code).toBe(2);
    expect(expectOneErrorLine(badMap.stderr)).toMatch(/--uidmap/);
    const noImage = await berth(["diff", "nosuch:1"], { root });
    expect(noImage.code).not.toBe(0);
    const badLayer = await berth(["diff", "--layer", "9", "base:1"], { root });
    expect(badLayer.code).toBe(2);
    const badFormat = await berth(["diff", "--format", "yaml", "base:1"], { root });
    expect(badFormat.code).toBe(2);
  });
});
