// The explorer page in a real headless Chromium (Debian's /usr/bin/chromium
// through playwright-core), served by serveStore on 127.0.0.1: the list with
// search, an image (bars, efficiency), the wasted-space table of an image
// that adds a big file and removes it, a layer tree with that whiteout, the
// comparison, the keyboard, a narrow window. Screenshots go to
// apps/server/test-artifacts/explorer/ (ignored by git) for a person to look at.
// Skips without chromium locally; fails under BERTH_REQUIRE_PEERS=1.
import { execFileSync } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { registry, requirePeer } from "@berth/peers";
import { describe, expect, it } from "vitest";
import { exploredStore } from "./ui-fixtures.js";

const pkg = fileURLToPath(new URL("..", import.meta.url));
const ARTIFACTS = join(pkg, "test-artifacts", "explorer");

/** The page script is compiled by the package build; build it when missing or older than its source. */
function ensurePageBuilt(): void {
  const built = statSync(join(pkg, "dist/ui/page/app.js"), { throwIfNoEntry: false });
  if (built && built.mtimeMs >= statSync(join(pkg, "src/ui/page/app.ts")).mtimeMs) return;
  execFileSync(process.execPath, [join(pkg, "node_modules/typescript/bin/tsc"), "-p", join(pkg, "tsconfig.build.json")], { stdio: "inherit" });
}

describe("the explorer page in headless Chromium", () => {
  it("list → image → wasted space → layer tree with a whiteout → comparison, by mouse and keyboard, wide and narrow", async (ctx) => {
    const chromium = process.env.CHROMIUM_PATH || (await requirePeer("chromium"));
    if (!chromium) return ctx.skip();
    ensurePageBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    const store = await exploredStore();
    const profile = await mkdtemp(join(tmpdir(), "berth-chromium-"));
    const { chromium: launcher } = await import("playwright-core");
    const browser = await launcher.launchPersistentContext(profile, {
      executablePath: chromium,
      viewport: { width: 1100, height: 900 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(`page error: ${String(e)}`));
      page.on("console", (m) => void (m.type() === "error" && problems.push(`console: ${m.text()}`)));
      page.on("request", (r) => void (r.url().startsWith(store.base) || problems.push(`request elsewhere: ${r.url()}`)));
      const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

      // the list, with search
      await page.goto(`${store.base}/ui/`);
      const rows = page.locator("#image-list tbody tr");
      await expect.poll(() => rows.count()).toBe(3);
      await shot("01-list");
      await page.keyboard.press("/");
      expect(await page.evaluate(() => document.activeElement?.id)).toBe("search");
      await page.keyboard.type("waste");
      await expect.poll(() => rows.count()).toBe(1);
      // keyboard: Tab to the one image link, Enter opens it
      await page.keyboard.press("Tab");
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("waste:1");
      await page.keyboard.press("Enter");

      // the image: bars with created_by, dive's numbers, config, identities
      const bars = page.locator("#layers li");
      await expect.poll(() => bars.count()).toBe(2);
      expect(await bars.nth(1).textContent()).toContain("RUN rm /var/log/big.log");
      // by hand: Σ minimum 7 + 5000 + 0 + 5 = 5012 over Σ cumulative 205012 → 2.44 %; wasted 200 kB
      expect(await page.locator("#efficiency").textContent()).toContain("2.44 %");
      expect(await page.locator("#efficiency").textContent()).toContain("200.0 kB");
      expect(await page.locator("#config").textContent()).toContain('["/bin/sh"]');
      expect(await page.locator("#identities").textContent()).toContain("sha256:");
      await shot("02-image");

      // the wasted-space table
      const wasted = page.locator("table.wasted tbody tr");
      expect(await wasted.count()).toBe(1);
      expect((await wasted.first().textContent())?.replace(/\s+/g, " ")).toContain("/var/log/big.log");
      expect(await wasted.first().textContent()).toContain("#1 removed");
      await page.locator("table.wasted").screenshot({ path: join(ARTIFACTS, "03-wasted.png") });

      // the layer tree of layer 1: the whiteout shown as a removal of what it hides
      await bars.nth(1).locator("a").click();
      const removed = page.locator('li.removed[data-path="var/log/big.log"]');
      await page.locator('li[data-path="var"] > details > summary').click();
      await page.locator('li[data-path="var/log"] > details > summary').click();
      await expect.poll(() => removed.count()).toBe(1);
      expect(await removed.textContent()).toContain("whiteout");
      expect(await removed.textContent()).toContain("200.0 kB");
      await shot("04-layer-tree");
      // filter by name, changed only, the whole image after the layer
      await page.fill("#search", "motd");
      await expect.poll(() => page.locator("#tree li[data-path]").count()).toBe(2); // etc/, etc/motd
      await page.fill("#search", "");
      await page.check("#whole-image");
      await page.locator('li[data-path="usr"] > details > summary').click();
      await page.locator('li[data-path="usr/lib"] > details > summary').click();
      await expect.poll(() => page.locator('li[data-path="usr/lib/libc.so"]').count()).toBe(1);
      expect(await page.locator('li[data-path="var/log/big.log"]').count()).toBe(0);
      await page.check("#changed-only");
      await expect.poll(() => page.locator('li[data-path="usr/lib/libc.so"]').count()).toBe(0);
      expect(await page.locator('li[data-path="etc/motd"]').count()).toBe(1);
      await shot("05-layer-whole-image-changed-only");

      // the comparison
      await page.goto(`${store.base}/ui/#/image/waste%3A1`);
      await page.selectOption("#compare-with", "app:1");
      await page.click("form button[type=submit]");
      await expect.poll(() => page.locator("#shared li").count()).toBe(1);
      expect(await page.locator("#only-a li").count()).toBe(1);
      expect(await page.locator("#only-b li").textContent()).toContain("COPY app /app");
      expect((await page.locator("table.file-diff").textContent())?.replace(/\s+/g, " ")).toContain("/bin/shchanged");
      expect(await page.locator("table.config-diff").textContent()).toContain("workdir");
      await shot("06-compare");

      // narrow: nothing wider than the window
      await page.setViewportSize({ width: 320, height: 780 });
      await page.goto(`${store.base}/ui/#/image/waste%3A1`);
      await expect.poll(() => page.locator("#layers li").count()).toBe(2);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(320);
      await shot("07-image-narrow");

      expect(problems).toEqual([]);

      // an error is said, not hidden
      await page.goto(`${store.base}/ui/#/image/nope%3A1`);
      await expect.poll(() => page.locator("#status.error").textContent()).toContain("ERR_IMAGE_NOT_FOUND");
    } finally {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
      await store.close();
    }
  });

  it("an image in a registry: the form, the remote view with its identities, a layer tree, as the local view shows them", async (ctx) => {
    const chromium = process.env.CHROMIUM_PATH || (await requirePeer("chromium"));
    if (!chromium) return ctx.skip();
    const reg = await registry();
    if (!reg) return ctx.skip();
    ensurePageBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    const store = await exploredStore();
    const profile = await mkdtemp(join(tmpdir(), "berth-chromium-"));
    const { chromium: launcher } = await import("playwright-core");
    const browser = await launcher.launchPersistentContext(profile, {
      executablePath: chromium,
      viewport: { width: 1100, height: 900 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const name = `${reg.host}/server-test/browser:1`;
      await store.server.service.tag("waste:1", name);
      await store.server.service.push(name);
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(`page error: ${String(e)}`));
      page.on("console", (m) => void (m.type() === "error" && problems.push(`console: ${m.text()}`)));
      await page.goto(`${store.base}/ui/`);
      await page.fill("#remote-ref", name);
      await page.keyboard.press("Enter");
      const bars = page.locator("#layers li");
      await expect.poll(() => bars.count()).toBe(2);
      expect(await page.locator("h1").textContent()).toBe(name);
      expect(await page.locator("#remote-note").textContent()).toContain("not pulled");
      expect(await page.locator("#efficiency").textContent()).toContain("2.44 %");
      expect(await page.locator("#identities").textContent()).toContain("index digest");
      expect(await page.locator("#compare-with").count()).toBe(0);
      await page.screenshot({ path: join(ARTIFACTS, "08-remote-image.png"), fullPage: true });
      await bars.nth(1).locator("a").click();
      await page.locator('li[data-path="var"] > details > summary').click();
      await page.locator('li[data-path="var/log"] > details > summary').click();
      await expect.poll(() => page.locator('li.removed[data-path="var/log/big.log"]').count()).toBe(1);
      await page.screenshot({ path: join(ARTIFACTS, "09-remote-layer-tree.png"), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
      await store.close();
      await reg.stop();
    }
  });
});
