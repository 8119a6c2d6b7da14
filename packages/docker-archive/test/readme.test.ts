import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";

// Runs the README's first example as written (imports resolve to the workspace sources).
it("the README example runs", async () => {
  const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
  const start = readme.indexOf("<!-- example:load-save");
  const code = /```js\n([\s\S]*?)```/.exec(readme.slice(start))![1]!;
  rmSync("/tmp/berth-archive-example", { recursive: true, force: true });
  const file = join(import.meta.dirname, `.readme-example-${process.pid}.mjs`);
  writeFileSync(file, code);
  const logs: unknown[][] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => logs.push(a);
  try {
    await import(file);
  } finally {
    console.log = orig;
    rmSync(file, { force: true });
  }
  expect(logs[0]![1]).toEqual(["docker.io/example/hello:1"]);
  expect(logs[1]![0]).toBe(true);
});
