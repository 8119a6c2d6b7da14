import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { berth, tempDir } from "./helpers.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const sha = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe("berth digest", () => {
  it("prints the digest of a file and the DiffID of a gzip layer", async () => {
    const raw = Buffer.from("hello layer\n".repeat(100));
    const gz = gzipSync(raw);
    writeFileSync(join(tmp.dir, "plain"), raw);
    writeFileSync(join(tmp.dir, "layer.gz"), gz);
    const r = await berth(["digest", join(tmp.dir, "plain"), join(tmp.dir, "layer.gz")]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe(`${sha(raw)}  ${join(tmp.dir, "plain")}`);
    expect(lines[1]).toBe(`${sha(gz)}  ${join(tmp.dir, "layer.gz")}  diffid=${sha(raw)} (gzip)`);
  });

  it("reads stdin and emits json", async () => {
    const r = await berth(["digest", "--format", "json", "-"], { input: "abc" });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)[0].Digest).toBe(sha("abc"));
  });

  it("prints ChainIDs with --chain", async () => {
    const a = sha("a");
    const b = sha("b");
    const r = await berth(["digest", "--chain", a, b]);
    expect(r.stdout.trim().split("\n")).toEqual([a, sha(`${a} ${b}`)]);
  });

  it("reports a missing file with exit 3 and one line", async () => {
    const r = await berth(["digest", join(tmp.dir, "missing")]);
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^berth: digest: .*missing: no such file or directory/);
  });

  it("rejects a bad digest with exit 5 and shows the code with --debug", async () => {
    const r = await berth(["--debug", "digest", "--chain", "sha256:xyz"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("[ERR_DIGEST_LENGTH]");
  });

  it("rejects unknown flags with usage exit 2", async () => {
    const r = await berth(["digest", "--nope", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option");
  });

  it("has --help and --version", async () => {
    expect((await berth(["digest", "--help"])).stdout).toContain("--chain");
    expect((await berth(["--version"])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
