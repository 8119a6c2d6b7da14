/**
 * The README's imgutil-style example against the real dockerd (@berth/peers),
 * and what dockerd then holds: the same image ID under both names, and a
 * second save that sends no layer. Skips without dockerd, fails under
 * BERTH_REQUIRE_PEERS=1.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DockerClient } from "@berth/docker-archive";
import { dockerd, peersDir, withLock } from "@berth/peers";
import { describe, expect, it } from "vitest";
import { freshService, tarStream } from "./helpers.js";

const peer = await dockerd();

describe.skipIf(!peer)("against dockerd", () => {
  it("the README example runs as written", async () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
    const start = readme.indexOf("<!-- example:imgutil");
    const code = /```js\n([\s\S]*?)```/.exec(readme.slice(start))![1]!;
    const expected = /prints\n\n```\n([\s\S]*?)```/.exec(readme.slice(start))![1]!;
    rmSync("/tmp/berth-imgutil-example", { recursive: true, force: true });
    const file = join(import.meta.dirname, `.readme-example-${process.pid}.mjs`);
    writeFileSync(file, code);
    const logs: string[] = [];
    const orig = console.log;
    const host = process.env.DOCKER_HOST;
    console.log = (...a: unknown[]) => logs.push(a.join(" "));
    process.env.DOCKER_HOST = peer!.host;
    try {
      // tools/pack-test runs this example from the packed tarball in the same dockerd (same names).
      await withLock(join(peersDir(), "readme-example-imgutil.lock"), 240_000, () => import(file));
    } finally {
      console.log = orig;
      if (host === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = host;
      rmSync(file, { force: true });
    }
    expect(`${logs.join("\n")}\n`).toBe(expected);
  });

  it("dockerd has the image under every name with berth's ID; a second save sends no layer", async () => {
    const { svc } = await freshService();
    const client = new DockerClient({ host: peer!.host });
    const img = await svc.build({ layers: [tarStream({ [`f${process.pid}`]: String(Date.now()) })], changes: ["LABEL t=1"] });
    const names = [`berth-svc-test/a:${process.pid}`, `berth-svc-test/b:${process.pid}`];
    const first = await svc.saveToDaemon(img.id, names, { client });
    expect(first.names.map((n) => n.error)).toEqual([undefined, undefined]);
    expect(first.load?.layersSent).toBe(1);
    for (const n of names) {
      const r = await peer!.docker(["image", "inspect", "-f", "{{.Id}}", n]);
      expect(r.stdout.trim()).toBe(img.id);
    }
    const again = await svc.saveToDaemon(img.id, [`berth-svc-test/c:${process.pid}`], { client });
    expect(again.load?.layersSent).toBe(0);
    expect(again.load?.layersSkipped).toBe(1);
    for (const n of [...names, `berth-svc-test/c:${process.pid}`]) await client.removeImage(n);
    expect(await client.hasImage(img.id)).toBe(false);
    await expect(client.removeImage(names[0]!)).rejects.toMatchObject({ status: 404 });
  });
});
