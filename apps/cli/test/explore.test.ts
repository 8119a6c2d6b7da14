import { spawn } from "node:child_process";
import { join } from "node:path";
import { openImageService } from "@berth/image-service";
import { makeTar } from "@berth/image-store/tar-fixture";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BERTH, berth, tempDir } from "./helpers.js";

const tmp = tempDir("berth-explore-");
const root = join(tmp.dir, "root");
const stream = (files: Record<string, string>) =>
  (async function* () {
    yield makeTar(files);
  })();

beforeAll(async () => {
  const svc = await openImageService({ root });
  // base:1 has 1,000,000 bytes of big.bin; waste:1 removes it and adds 10 bytes
  await svc.import(stream({ "bin/sh": "shell", "big.bin": "b".repeat(1_000_000) }), { tags: ["base:1"] });
  await svc.build({ base: "base:1", layers: [stream({ ".wh.big.bin": "", "etc/motd": "0123456789" })], tags: ["waste:1"], createdBy: "RUN rm /big.bin" });
  await svc.close();
});
afterAll(() => tmp.cleanup());

describe("berth explore --ci", () => {
  it("fails below the thresholds and prints dive's numbers", async () => {
    const r = await berth(["explore", "--ci", "waste:1", "--lowest-efficiency", "0.9", "--highest-wasted-bytes", "20MB"], { root });
    // by hand: Σ minimum = 5 + 0 + 10 = 15; Σ cumulative = 5 + 1,000,000 + 10; wasted = 1,000,000; user bytes = 10
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`efficiency: ${((15 / 1_000_015) * 100).toFixed(4)} %`);
    expect(r.stdout).toContain("wasted bytes: 1000000 (1MB)");
    expect(r.stdout).toContain("user wasted percent: 10000000.0000 %");
    expect(r.stdout).toMatch(/2\s+1MB\s+\/big\.bin/);
    expect(r.stdout).toContain("FAIL lowest-efficiency");
    expect(r.stdout).toContain("PASS highest-wasted-bytes");
    expect(r.stdout).toContain("FAIL highest-user-wasted-percent");
  });

  it("passes an image without waste, and a threshold the waste stays within", async () => {
    const base = await berth(["explore", "--ci", "base:1"], { root });
    expect([base.code, base.stdout]).toEqual([0, expect.stringContaining("all rules passed")]);
    const lenient = await berth(["explore", "--ci", "waste:1", "--lowest-efficiency", "disabled", "--highest-user-wasted-percent", "disabled", "--highest-wasted-bytes", "1MB"], { root });
    expect(lenient.code).toBe(0);
    const strict = await berth(["explore", "--ci", "waste:1", "--lowest-efficiency", "disabled", "--highest-user-wasted-percent", "disabled", "--highest-wasted-bytes", "999999"], { root });
    expect([strict.code, strict.stdout]).toEqual([1, expect.stringContaining("FAIL highest-wasted-bytes: 1000000 > 999999")]);
  });

  it("refuses bad thresholds as usage errors and a missing image as not found", async () => {
    expect((await berth(["explore", "--ci", "waste:1", "--lowest-efficiency", "2"], { root })).code).toBe(2);
    expect((await berth(["explore", "--ci", "waste:1", "--highest-wasted-bytes", "lots"], { root })).code).toBe(2);
    expect((await berth(["explore", "--ci", "nope:1"], { root })).code).toBe(3);
  });
});

describe("berth explore IMAGE", () => {
  it("starts a server when none answers and prints the page URL; a second run finds it", async () => {
    const child = spawn(process.execPath, [BERTH, "explore", "waste:1", "--url", "http://127.0.0.1:0"], { env: { ...process.env, BERTH_ROOT: root }, stdio: ["ignore", "pipe", "pipe"] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (c: Buffer) => {
          out += c.toString();
          if (out.includes("\n")) resolve(out.trim());
        });
        child.on("exit", (code) => reject(new Error(`berth explore exited ${code}`)));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ui\/#\/image\/waste%3A1$/);
      const origin = url.slice(0, url.indexOf("/ui/"));
      const x = (await (await fetch(`${origin}/ui/api/images/waste%3A1`)).json()) as { layers: unknown[] };
      expect(x.layers).toHaveLength(2);
      // the running server is found (same store: same image ID) and not started again
      const again = await berth(["explore", "waste:1", "--url", origin], { root });
      expect([again.code, again.stdout]).toEqual([0, `${url}\n`]);
      // a server of another store is said to be one
      const other = join(tmp.dir, "other");
      const svc = await openImageService({ root: other });
      await svc.import(stream({ x: "other" }), { tags: ["waste:1"] });
      await svc.close();
      const wrong = await berth(["explore", "waste:1", "--url", origin], { root: other });
      expect([wrong.code, wrong.stderr]).toEqual([2, expect.stringContaining("serves another store")]);
    } finally {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    }
  });
});
