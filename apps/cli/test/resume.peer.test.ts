/**
 * `berth pull` killed with SIGKILL half-way through a layer, then run again
 * (against the real docker-registry): the second run fetches only what the
 * first did not keep (the registry's access log counts the bytes it sent),
 * stores the image the registry has, and fsck finds no damage. Skips without
 * the peer, fails under BERTH_REQUIRE_PEERS=1.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type RegistryPeer, registry } from "@berth/peers";
import { afterAll, describe, expect, it } from "vitest";
import { BERTH, berth, berthOk, partialBytes, tempDir } from "./helpers.js";

const reg = await registry();
const tmp = tempDir();
afterAll(async () => {
  await reg?.stop();
  tmp.cleanup();
});

describe.skipIf(!reg)("berth pull after kill -9", { timeout: 180_000 }, () => {
  it("resumes: the second run fetches only the rest, and the image is whole", async () => {
    const r = reg as RegistryPeer;
    const name = `${r.host}/cli-resume/app:1`;
    const rootA = join(tmp.dir, "a");
    const rootfs = join(tmp.dir, "rootfs");
    mkdirSync(join(rootfs, "data"), { recursive: true });
    writeFileSync(join(rootfs, "data", "big.bin"), randomBytes(96 << 20));
    await berthOk(["import", rootfs, name], { root: rootA });
    const id = (await berthOk(["image", "inspect", "-f", "{{.Id}}", name], { root: rootA })).stdout.trim();
    await berthOk(["push", "--compression", "none", name], { root: rootA }); // random bytes do not compress
    const manifest = (await (
      await fetch(`${r.url}/v2/cli-resume/app/manifests/1`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })
    ).json()) as { layers: Array<{ size: number }> };
    expect(manifest.layers).toHaveLength(1);
    const size = manifest.layers[0]!.size;

    const rootB = join(tmp.dir, "b");
    const child = spawn(process.execPath, [BERTH, "pull", "-q", name], { env: { ...process.env, BERTH_ROOT: rootB }, stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    let killedAt = 0;
    let done = false;
    void exited.then(() => (done = true));
    while (!done) {
      const n = partialBytes(rootB);
      if (n > 24 << 20) {
        child.kill("SIGKILL");
        killedAt = n;
        break;
      }
      await new Promise((res) => setTimeout(res, 2));
    }
    await exited;
    expect(killedAt, "the pull finished before it could be killed half-way").toBeGreaterThan(0);
    const kept = partialBytes(rootB);
    expect(kept).toBeGreaterThanOrEqual(killedAt);

    // the registry logs the killed run's layer GET once it sees the connection gone, which can be
    // after this point: wait for that line, so that its bytes are not counted as the second run's
    const layerGets = async () =>
      (await r.accessLog()).filter((e) => e.method === "GET" && e.path.includes("/blobs/sha256:") && e.bytes > 1000).length;
    for (let i = 0; i < 200 && (await layerGets()) === 0; i++) await new Promise((res) => setTimeout(res, 50));
    expect(await layerGets(), "the registry logged the killed run's layer GET").toBe(1);
    const mark = (await r.accessLog()).length;
    const again = await berthOk(["pull", "--progress", "json", name], { root: rootB });
    const summary = again.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.event === "summary");
    expect(summary).toMatchObject({ id, status: "downloaded" });
    const sent = (await r.accessLog())
      .slice(mark)
      .filter((e) => e.method === "GET" && e.path.includes("/blobs/sha256:") && e.bytes > 1000)
      .reduce((n, e) => n + e.bytes, 0);
    expect(sent).toBe(size - kept);
    expect(sent).toBeLessThan(size * 0.8);
    expect(partialBytes(rootB)).toBe(0);
    const fsck = await berth(["fsck"], { root: rootB });
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
  });
});
