import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BERTH, berth, expectOneErrorLine, tempDir } from "./helpers.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const VERBS = [
  ["images"],
  ["image", "ls"],
  ["image", "inspect"],
  ["image", "history"],
  ["image", "tag"],
  ["image", "rm"],
  ["image", "prune"],
  ["image", "load"],
  ["image", "save"],
  ["inspect"],
  ["history"],
  ["tag"],
  ["rmi"],
  ["import"],
  ["load"],
  ["save"],
  ["docker", "push"],
  ["docker", "pull"],
  ["pull"],
  ["push"],
  ["copy"],
  ["login"],
  ["logout"],
  ["system", "df"],
  ["fsck"],
  ["cache", "du"],
  ["cache", "prune"],
  ["cache", "import"],
  ["cache", "export"],
  ["digest"],
  ["completion"],
];

describe("the berth command", () => {
  it("has --help on every verb (exit 0, usage on stdout)", async () => {
    const results = await Promise.all(VERBS.map((v) => berth([...v, "--help"], { root: join(tmp.dir, "help") })));
    results.forEach((r, i) => {
      expect(r.code, VERBS[i]!.join(" ")).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: berth ${VERBS[i]!.length > 1 ? `${VERBS[i]![0]} ` : ""}${VERBS[i]!.at(-1)}`));
    });
    const top = await berth(["--help"]);
    for (const v of ["images", "load", "save", "import", "docker", "system", "fsck", "cache", "digest", "completion"]) expect(top.stdout).toContain(v);
  });

  it("usage errors exit 2 with one berth: line; an unknown verb too", async () => {
    for (const args of [["frobnicate"], ["images", "--nope"], ["tag", "only-one"], ["--progress=loud", "images"], ["completion", "fish"]]) {
      const r = await berth(args, { root: join(tmp.dir, "usage") });
      expect(r.code, args.join(" ")).toBe(2);
      expect(expectOneErrorLine(r.stderr)).toMatch(/^berth: /);
    }
  });

  it("global options go before or after the verb", async () => {
    const a = await berth(["--root", join(tmp.dir, "r1"), "images", "-q"]);
    const b = await berth(["images", "-q", "--root", join(tmp.dir, "r1")]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
  });

  it("a root that cannot be a directory is an I/O error (6)", async () => {
    const file = join(tmp.dir, "a-file");
    (await import("node:fs")).writeFileSync(file, "x");
    const r = await berth(["images"], { root: join(file, "root") });
    expect(r.code).toBe(6);
    expectOneErrorLine(r.stderr);
  });

  it("completion bash completes verbs, sub-verbs and flags", () => {
    const script = `eval "$("${process.execPath}" "${BERTH}" completion bash)"
for line in "berth ima" "berth image ins" "berth images --fi" "berth docker p"; do
  COMP_WORDS=($line); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); COMPREPLY=(); _berth; echo "\${COMPREPLY[*]}"
done`;
    const out = execFileSync("bash", ["-c", script], { encoding: "utf8" }).trim().split("\n");
    expect(out).toEqual(["images image", "inspect", "--filter", "push pull"]);
  });
});
