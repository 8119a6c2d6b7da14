/**
 * `berth explore` of an image in a registry (the real docker-registry through
 * @berth/peers; skips without it, fails under BERTH_REQUIRE_PEERS=1): an image
 * pushed from one store, checked with `--ci` from an empty store (the same
 * numbers as the local check, no pull), and the page URL printed when a
 * `berth serve` answers.
 */
import { join } from "node:path";
import { openImageService } from "@berth/image-service";
import { makeTar } from "@berth/image-store/tar-fixture";
import { type RegistryPeer, registry } from "@berth/peers";
import { serveStore } from "@berth/server";
import { afterAll, describe, expect, it } from "vitest";
import { berth, berthOk, tempDir } from "./helpers.js";

const reg = await registry();
const tmp = tempDir("berth-explore-remote-");
afterAll(async () => {
  await reg?.stop();
  tmp.cleanup();
});

const stream = (files: Record<string, string>) =>
  (async function* () {
    yield makeTar(files);
  })();

describe.skipIf(!reg)("berth explore REGISTRY/REPO:TAG", { timeout: 120_000 }, () => {
  it("--ci from an empty store gives the local numbers without pulling; the page URL names the remote view", async () => {
    const r = reg as RegistryPeer;
    const name = `${r.host}/cli-test/waste:1`;
    const rootA = join(tmp.dir, "a");
    const rootB = join(tmp.dir, "b");
    const svc = await openImageService({ root: rootA });
    await svc.import(stream({ "bin/sh": "shell", "big.bin": "b".repeat(1_000_000) }), { tags: ["base:1"] });
    await svc.build({ base: "base:1", layers: [stream({ ".wh.big.bin": "", "etc/motd": "0123456789" })], tags: [name], createdBy: "RUN rm /big.bin" });
    await svc.push(name);
    await svc.close();

    const here = await berth(["explore", "--ci", name], { root: rootA });
    const there = await berth(["explore", "--ci", name], { root: rootB });
    expect([there.code, here.code]).toEqual([1, 1]);
    // the same report, the image line aside (the remote one names the reference)
    const body = (s: string) => s.split("\n").slice(1).join("\n");
    expect(body(there.stdout)).toBe(body(here.stdout));
    expect(there.stdout).toContain("wasted bytes: 1000000 (1MB)");
    expect(there.stdout.split("\n")[0]).toBe(`image: ${name}`);
    // nothing was pulled into the empty store
    expect((await berthOk(["images", "-q"], { root: rootB })).stdout.trim()).toBe("");

    const server = await serveStore({ root: join(tmp.dir, "served"), port: 0, log: { format: "none" }, sweepIntervalMs: 0 });
    try {
      const url = await berthOk(["explore", "--url", server.url, name], { root: rootB });
      expect(url.stdout).toBe(`${server.url}/ui/#/remote/${encodeURIComponent(name)}\n`);
      const withPlatform = await berthOk(["explore", "--url", server.url, "--platform", "linux/arm64", name], { root: rootB });
      expect(withPlatform.stdout).toBe(`${server.url}/ui/?platform=linux%2Farm64#/remote/${encodeURIComponent(name)}\n`);
    } finally {
      await server.close();
    }
    // a name that is neither in the store nor names a registry stays a local name: not found
    expect((await berth(["explore", "--ci", "nope:1"], { root: rootB })).code).toBe(3);
  });
});
