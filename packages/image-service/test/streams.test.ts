// import, build and load read every byte of their streams whatever the
// streams' timing: child processes that exited before a byte was read (Node
// drains such a stdout into nothing), a socket whose peer sent everything.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { sha256 } from "@berth/digest";
import { exitedChildStdout, socketStream } from "@berth/layer-store/testsuite";
import { describe, expect, it } from "vitest";
import { freshService, makeDir } from "./helpers.js";

/** The bytes `tar` writes for `files` in a new directory, and the arguments that write them again. */
async function tarOfDir(parent: string, name: string, files: Record<string, string>): Promise<{ args: string[]; bytes: Buffer }> {
  const root = await makeDir(parent, name, files);
  const args = ["-cf", "-", "-C", root, ...Object.keys(files)];
  return { args, bytes: execFileSync("tar", args) };
}

describe("streams with their own timing", () => {
  it("import from a `tar` child and build from two children, all exited before the build read them", async () => {
    const { svc, dir } = await freshService();
    const a = await tarOfDir(dir, "a", { "bin/sh": "shell\n" });
    const imported = await svc.import(exitedChildStdout("tar", a.args), { tags: ["base:1"] });
    expect(imported.layers.map((l) => l.diffID)).toEqual([sha256(a.bytes)]);
    // the base is looked up and both children have exited before the first layer is read
    const b = await tarOfDir(dir, "b", { "etc/motd": "hi\n" });
    const c = await tarOfDir(dir, "c", { "app/run": "#!/bin/sh\n" });
    const built = await svc.build({ base: "base:1", layers: [exitedChildStdout("tar", b.args), { stream: exitedChildStdout("tar", c.args), name: "c.tar" }] });
    expect(built.image.config.rootfs.diff_ids).toEqual([sha256(a.bytes), sha256(b.bytes), sha256(c.bytes)]);
  });

  it("import from a socket whose peer sent everything", async () => {
    const { svc, dir } = await freshService();
    const a = await tarOfDir(dir, "a", { "hello.txt": "hello\n" });
    const imported = await svc.import(await socketStream(a.bytes));
    expect(imported.layers.map((l) => l.diffID)).toEqual([sha256(a.bytes)]);
  });

  it("load from the stdout of `cat` that exited before load read it", async () => {
    const from = await freshService();
    const a = await tarOfDir(from.dir, "a", { "hello.txt": "hello\n" });
    const image = await from.svc.import(exitedChildStdout("tar", a.args), { tags: ["hello:1"] });
    const file = join(from.dir, "hello.tar");
    await from.svc.save(["hello:1"], file);
    const to = await freshService();
    const r = await to.svc.load(exitedChildStdout("cat", [file]));
    expect(r.images.map((i) => [i.id, i.tags])).toEqual([[image.id, ["docker.io/library/hello:1"]]]);
  });
});
