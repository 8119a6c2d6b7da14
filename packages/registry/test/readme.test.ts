import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { registry } from "@berth/peers";
import { afterAll, describe, expect, it } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));
const reg = await registry();
afterAll(() => reg?.stop());

describe.skipIf(!reg)("README", () => {
  it("the example runs against a real docker-registry", async () => {
    const readme = await readFile(path.join(here, "..", "README.md"), "utf8");
    const code = /```js\n([\s\S]*?)```/.exec(readme)![1]!;
    const dist = pathToFileURL(path.join(here, "..", "dist", "index.js")).href;
    const script = path.join(tmpdir(), `berth-registry-readme-${process.pid}.mjs`);
    await writeFile(script, code.replace('from "@berth/registry"', `from ${JSON.stringify(dist)}`));
    try {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [script], { env: { ...process.env, REGISTRY: reg!.host, DOCKER_CONFIG: path.join(tmpdir(), "berth-readme-no-config") } }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
        ),
      );
      expect(out.trim().split("\n")).toEqual(["true", "[ 'v1' ]", "true true"]);
    } finally {
      await rm(script, { force: true });
    }
  });
});
