import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { spawnWorker, watch } from "./child.js";

const here = path.dirname(fileURLToPath(import.meta.url));

describe("README", () => {
  it("the example runs", async () => {
    const readme = await readFile(path.join(here, "..", "README.md"), "utf8");
    const code = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    const script = path.join(here, "workers", `readme-${process.pid}.ts`);
    await writeFile(script, code.replace('from "@berth/layer-store"', 'from "../../src/index.js"'));
    try {
      const w = watch(spawnWorker(path.basename(script), []));
      const exit = await w.exited;
      expect(exit.code, w.stderr()).toBe(0);
      expect(w.lines[1]).toBe("true");
      expect(w.lines.at(-2)).toMatch(/^2 \d+$/);
      expect(w.lines.at(-1)).toBe("true");
    } finally {
      await rm(script, { force: true });
    }
  });

  it("the off-thread writer's example runs", async () => {
    const readme = await readFile(path.join(here, "..", "README.md"), "utf8");
    const code = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((c) => c.includes("openOffThreadWriter(store.content)"))!;
    const root = `/tmp/berth-offthread-example-${process.pid}`;
    const script = path.join(here, "workers", `readme-offthread-${process.pid}.ts`);
    await writeFile(script, code.replace('from "@berth/layer-store"', 'from "../../src/index.js"').replace("/tmp/berth-offthread-example", root));
    try {
      const w = watch(spawnWorker(path.basename(script), []));
      const exit = await w.exited;
      expect(exit.code, w.stderr()).toBe(0);
      expect(w.lines.at(-1)).toMatch(/^sha256:[0-9a-f]{64} 4194304$/);
    } finally {
      await rm(script, { force: true });
      await rm(root, { recursive: true, force: true });
    }
  });
});
