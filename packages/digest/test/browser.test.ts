// The WASM backend in a real headless Chromium (Debian's /usr/bin/chromium
// through playwright-core): the page bundle is built from the sources with
// rolldown (vite's bundler, already installed with vitest) for the browser
// platform, served from 127.0.0.1, and checked against node:crypto.
// Skips without chromium locally; fails under BERTH_REQUIRE_PEERS=1.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { requirePeer } from "@berth/peers";
import { describe, expect, it } from "vitest";

const ref = (data: Uint8Array | string): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function bundle(): Promise<string> {
  const req = createRequire(import.meta.url);
  const viaVitest = createRequire(req.resolve("vitest/package.json"));
  const viaVite = createRequire(viaVitest.resolve("vite/package.json"));
  // rolldown is not a dependency of ours (it comes with vitest's vite), so it is typed by hand.
  type Rolldown = (opts: object) => Promise<{
    generate(o: object): Promise<{ output: [{ code: string }] }>;
    close(): Promise<void>;
  }>;
  const { rolldown } = (await import(viaVite.resolve("rolldown"))) as { rolldown: Rolldown };
  const b = await rolldown({
    input: fileURLToPath(new URL("./browser/entry.ts", import.meta.url)),
    platform: "browser",
    resolve: { conditionNames: ["browser", "import", "default"] },
  });
  const { output } = await b.generate({ format: "esm" });
  await b.close();
  return output[0].code;
}

function expected() {
  const nist = JSON.parse(readFileSync(new URL("./vectors/sha256-nist.json", import.meta.url), "utf8"));
  const all = new Uint8Array(700).map((_, i) => (i * 31) & 255);
  const lengths = Array.from({ length: 700 }, (_, n) => ref(all.subarray(0, n)));
  const chains: string[][] = [];
  for (let c = 0; c < 41; c++) chains.push(Array.from({ length: 1 + (c % 13) }, (_, k) => ref(`${c}/${k}`)));
  const chainTops = chains.map((ids) => ids.reduce((acc, d) => ref(`${acc} ${d}`)));
  const raw = new TextEncoder().encode("layer tar bytes ".repeat(5000));
  const gz = gzipSync(raw);
  return {
    vectors: nist.vectors,
    lengths,
    chains,
    chainTops,
    gzipB64: Buffer.from(gz).toString("base64"),
    gzipRaw: ref(raw),
    gzipBlob: ref(gz),
  };
}

describe("in headless Chromium", () => {
  it("the WASM backend passes the vectors, batches and layerDigests", async (ctx) => {
    const chromium = process.env.CHROMIUM_PATH || (await requirePeer("chromium"));
    if (!chromium) return ctx.skip();
    const code = await bundle();
    // No static import of a Node built-in in the browser bundle (node:crypto is
    // reached through process.getBuiltinModule, node:zlib through a guarded dynamic import).
    expect(code).not.toMatch(/^\s*import\b[^;]*["']node:/m);
    const html = `<!doctype html><meta charset="utf-8"><script>window.__expected = ${JSON.stringify(expected())};</script><script type="module" src="/bundle.js"></script>`;
    const server: Server = createServer((req, res) => {
      if (req.url === "/bundle.js") {
        res.writeHead(200, { "content-type": "text/javascript" }).end(code);
      } else {
        res.writeHead(200, { "content-type": "text/html" }).end(html);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const profile = await mkdtemp(join(tmpdir(), "berth-chromium-"));
    const { chromium: launcher } = await import("playwright-core");
    // A fresh profile directory (playwright wants it as launchPersistentContext's userDataDir).
    const browser = await launcher.launchPersistentContext(profile, {
      executablePath: chromium,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => (globalThis as { __done?: unknown }).__done !== undefined, null, { timeout: 60_000 });
      const result = await page.evaluate(() => (globalThis as unknown as { __done: Promise<unknown> }).__done);
      expect(errors).toEqual([]);
      expect(result).toEqual({
        vectors: 5,
        lengths: 700,
        chains: 41,
        backend: { stream: "wasm", many: "wasm", chain: "wasm" },
        simd: true,
      });
    } finally {
      await browser.close();
      server.close();
      await rm(profile, { recursive: true, force: true });
    }
  }, 180_000);
});
