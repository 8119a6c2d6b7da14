import type { ImageComparison, ImageExplanation, LayerView } from "@berth/image-service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exploredStore } from "./ui-fixtures.js";

let store: Awaited<ReturnType<typeof exploredStore>>;
beforeAll(async () => {
  store = await exploredStore();
});
afterAll(async () => {
  await store?.close();
});

const get = (path: string, init?: RequestInit) => fetch(`${store.base}${path}`, init);

describe("the explorer's JSON endpoints", () => {
  it("lists the store's images", async () => {
    const r = await get("/ui/api/images");
    expect(r.status).toBe(200);
    const rows = (await r.json()) as Array<{ repoTags: string[]; layers: number; size: number; id: string }>;
    expect(rows.map((i) => i.repoTags[0]).sort()).toEqual(["app:1", "base:1", "waste:1"]);
    expect(rows.find((i) => i.repoTags[0] === "waste:1")).toMatchObject({ layers: 2, id: expect.stringMatching(/^sha256:/) });
  });

  it("explains an image, with dive's numbers computed by hand", async () => {
    const x = (await (await get(`/ui/api/images/${encodeURIComponent("waste:1")}`)).json()) as ImageExplanation;
    // bin/sh 7, usr/lib/libc.so 5000, var/log/big.log [200000, removed: 0], etc/motd 5
    expect(x.efficiency.wastedBytes).toBe(200_000);
    expect(x.efficiency.efficiency).toBeCloseTo(5012 / 205_012, 12);
    expect(x.layers.map((l) => l.createdBy)).toEqual(["", "RUN rm /var/log/big.log"]);
    expect(x.config.cmd).toEqual(["/bin/sh"]);
  });

  it("takes any name the store resolves, URL-encoded: a reference with a registry and slashes, an ID prefix", async () => {
    const id = ((await (await get("/ui/api/images/waste%3A1")).json()) as ImageExplanation).id;
    await store.server.service.tag("waste:1", "registry.local:5000/team/waste:2");
    for (const name of ["registry.local:5000/team/waste:2", id, id.slice("sha256:".length, "sha256:".length + 12)]) {
      const r = await get(`/ui/api/images/${encodeURIComponent(name)}/layers/0`);
      expect([name, r.status]).toEqual([name, 200]);
    }
  });

  it("serves a layer marked against the layers below, and the image after it", async () => {
    const v = (await (await get(`/ui/api/images/waste%3A1/layers/1?image=1`)).json()) as LayerView;
    expect(v.entries.map((e) => [e.path, e.type, e.status])).toEqual([
      ["var/log/big.log", "whiteout", "removed"],
      ["etc/motd", "file", "added"],
    ]);
    expect(v.image?.map((f) => f.path)).toEqual(["bin", "bin/sh", "etc", "etc/motd", "usr", "usr/lib", "usr/lib/libc.so", "var", "var/log"]);
  });

  it("compares two images", async () => {
    const c = (await (await get("/ui/api/compare?a=waste%3A1&b=app%3A1")).json()) as ImageComparison;
    expect([c.shared.length, c.onlyA.length, c.onlyB.length]).toEqual([1, 1, 1]);
    // waste:1 removed big.log, app:1 did not: from A to B it comes back
    expect(c.files.map((f) => [f.path, f.status])).toEqual([
      ["var/log/big.log", "added"],
      ["app/data.bin", "added"],
      ["bin/sh", "changed"],
      ["etc/motd", "removed"],
      ["app/run", "added"],
      ["app", "added"],
      ["etc", "removed"],
    ]);
    expect(c.configDifferences.map((d) => d.field)).toEqual(["labels", "workdir", "exposedPorts"]);
  });

  it("answers errors as {code, message} with the Engine API's statuses", async () => {
    const cases: Array<[string, number, string]> = [
      ["/ui/api/images/nope%3A1", 404, "ERR_IMAGE_NOT_FOUND"],
      ["/ui/api/images/waste%3A1/layers/7", 400, "ERR_INVALID_LAYER_INDEX"],
      ["/ui/api/images/waste%3A1/layers/x", 400, "ERR_SERVER_UI_BAD_REQUEST"],
      ["/ui/api/images/%E0%A4%A", 400, "ERR_SERVER_UI_BAD_REQUEST"],
      ["/ui/api/compare?a=waste%3A1", 400, "ERR_SERVER_UI_BAD_REQUEST"],
      ["/ui/api/nothing", 404, "NOT_FOUND"],
    ];
    for (const [path, status, code] of cases) {
      const r = await get(path);
      expect([path, r.status, ((await r.json()) as { code: string }).code]).toEqual([path, status, code]);
    }
    expect((await get("/ui/api/images", { method: "POST" })).status).toBe(405);
  });

  it("serves the page, its stylesheet and its script from this process only", async () => {
    const redirect = await get("/ui", { redirect: "manual" });
    expect([redirect.status, redirect.headers.get("location")]).toEqual([308, "/ui/"]);
    const page = await get("/ui/");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/ui/app.js">');
    expect(html).not.toMatch(/https?:\/\//);
    const js = await (await get("/ui/app.js")).text();
    expect(js).toContain("/ui/api/images");
    expect(js).not.toMatch(/^\s*import\s/m);
    expect((await get("/ui/app.css")).headers.get("content-type")).toBe("text/css; charset=utf-8");
  });
});
