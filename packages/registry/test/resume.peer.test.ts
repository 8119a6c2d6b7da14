/**
 * A pull killed (SIGKILL) half-way (half of the image's blob bytes, inside its
 * large layer) and run again asks
 * the registry only for the rest: the registry's access log shows the second
 * run transferring ≤ 55 % of the image's bytes, and the result is
 * byte-identical. The killed run is a child process using the built package.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { registry } from "@berth/peers";
import { afterAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../src/client.js";
import { copyImage } from "../src/copy.js";
import { layoutDestination, layoutSource, registryDestination, registrySource } from "../src/endpoints.js";
import { OciLayout } from "../src/layout.js";
import { layoutBlobs, writeTestImage } from "./images.js";

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "index.js");
const reg = await registry();
const work = await mkdtemp(path.join(tmpdir(), "berth-registry-resume-"));
afterAll(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

const CHILD = `
const [distUrl, host, dir, total] = process.argv.slice(2);
const { RegistryClient, OciLayout, copyImage, registrySource, layoutDestination } = await import(distUrl);
const client = new RegistryClient();
const layout = await OciLayout.open(dir, { create: true });
let done = 0;
await copyImage(registrySource(client.repository(host + "/resume-test/big"), "v1"), layoutDestination(layout), {
  tag: "v1",
  concurrency: 1,
  onProgress(e) {
    // SIGKILL once half of the image's blob bytes have arrived
    if (e.type === "blob-done") done += e.size;
    if (e.type === "blob-progress" && done + e.bytes >= Number(total) / 2) process.kill(process.pid, "SIGKILL");
  },
});
process.exit(3); // never reached: the kill comes first
`;

describe.skipIf(!reg)("resumed pull", () => {
  it("continues a killed pull from its partial file and transfers at most 55 % of the bytes", async () => {
    expect(existsSync(dist), `build the package first (${dist})`).toBe(true);
    const image = await writeTestImage(path.join(work, "src"), "v1", { layerSizes: [24 << 20, 64 << 10] });
    const client = new RegistryClient();
    try {
      await copyImage(layoutSource(await OciLayout.open(image.dir), "v1"), registryDestination(client.repository(`${reg!.host}/resume-test/big`, { push: true })), { tag: "v1" });
      const big = image.layers.reduce((a, b) => (a.size >= b.size ? a : b));
      const dir = path.join(work, "pulled");
      const script = path.join(work, "child.mjs");
      await writeFile(script, CHILD);
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [script, pathToFileURL(dist).href, reg!.host, dir, String(image.blobBytes)], { stdio: "inherit" });
        child.on("exit", (c, sig) => resolve(sig === "SIGKILL" ? -9 : c));
      });
      expect(code).toBe(-9);
      const layout = await OciLayout.open(dir);
      const partial = await layout.partialSize(big.digest);
      expect(partial).toBeGreaterThan(0);
      expect(partial).toBeLessThan(big.size);

      // the registry logs the killed child's GET only when it notices the closed connection
      const bigGet = (e: { method: string; path: string }) => e.method === "GET" && e.path.endsWith(`/blobs/${big.digest}`);
      await expect.poll(async () => (await reg!.accessLog()).some(bigGet), { timeout: 20_000 }).toBe(true);
      const mark = (await reg!.accessLog()).length;
      const res = await copyImage(registrySource(client.repository(`${reg!.host}/resume-test/big`), "v1"), layoutDestination(layout), { tag: "v1" });
      const bigResult = res.blobs.find((b) => b.digest === big.digest)!;
      expect(bigResult.resumedFrom).toBe(partial);
      expect(bigResult.bytes).toBe(big.size - partial);
      const blobGets = (await reg!.accessLog()).slice(mark).filter((e) => e.method === "GET" && e.path.includes("/blobs/"));
      const sent = blobGets.reduce((n, e) => n + e.bytes, 0);
      expect(sent).toBe(res.bytesTransferred);
      expect(sent / image.blobBytes).toBeLessThanOrEqual(0.55);
      expect(await layoutBlobs(dir)).toEqual(await layoutBlobs(image.dir));
      expect(await layout.partialSize(big.digest)).toBe(0);
    } finally {
      await client.close();
    }
  });
});
