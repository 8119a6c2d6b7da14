import { sha256 } from "@berth/digest";
import { openStore, type Store } from "@berth/image-store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { collectParentChain, isParentChainEntry, restoreParentChain } from "../src/archive.js";
import { makeTarGz, tempDir } from "./helpers.js";

let a: Store;
let b: Store;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  const t = await tempDir();
  cleanup = t.cleanup;
  a = await openStore({ root: `${t.dir}/a` });
  b = await openStore({ root: `${t.dir}/b` });
});
afterEach(async () => {
  await a.close();
  await b.close();
  await cleanup();
});

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** Three images: base (1 layer) → meta step (no layer) → top (2 layers), parented, built locally. */
async function chainIn(store: Store) {
  const l1 = await store.layers.register([await makeTarGz({ a: "1" })]);
  const l2 = await store.layers.register([await makeTarGz({ b: "2" })], l1.chainID);
  const h0 = { created: "2024-01-01T00:00:00Z", created_by: "base" };
  const h1 = { created: "2024-01-01T00:00:01Z", created_by: "ENV A=1", empty_layer: true };
  const h2 = { created: "2024-01-01T00:00:02Z", created_by: "RUN x" };
  const cfg = (history: object[], diffIds: string[]) => enc({ architecture: "amd64", os: "linux", history, rootfs: { type: "layers", diff_ids: diffIds } });
  const base = await store.images.create(cfg([h0], [l1.diffID]));
  const meta = await store.images.create(cfg([h0, h1], [l1.diffID]));
  const top = await store.images.create(cfg([h0, h1, h2], [l1.diffID, l2.diffID]));
  await store.images.setParent(meta.id, base.id);
  await store.images.setParent(top.id, meta.id);
  await store.images.setBuiltLocally(meta.id);
  await store.images.setBuiltLocally(top.id);
  return { base, meta, top, l1, l2 };
}

describe("parent chain carried through archive files", () => {
  it("collects the chain bottom first and restores ancestors, links and built-locally marks", async () => {
    const { base, meta, top } = await chainIn(a);
    const exp = await collectParentChain(a, [top.id]);
    expect(exp.chain).toEqual([
      { id: base.id, parent: null, builtLocally: false },
      { id: meta.id, parent: base.id, builtLocally: true },
      { id: top.id, parent: meta.id, builtLocally: true },
    ]);
    expect(exp.carried).toEqual([base.id, meta.id]);
    expect(exp.files.every((f) => isParentChainEntry(f.name))).toBe(true);
    // Machine B got the top image (its layers) from the archive, nothing else.
    const l1 = await b.layers.register([await makeTarGz({ a: "1" })]);
    await b.layers.register([await makeTarGz({ b: "2" })], l1.chainID);
    await b.images.create(top.configBytes);
    const res = await restoreParentChain(b, exp.files);
    expect(res).toEqual({ created: [base.id, meta.id], parents: 2, builtLocally: 2, skipped: [] });
    expect(await b.images.getParent(top.id)).toBe(meta.id);
    expect(await b.images.isBuiltLocally(meta.id)).toBe(true);
    // Idempotent.
    expect(await restoreParentChain(b, exp.files)).toEqual({ created: [], parents: 0, builtLocally: 0, skipped: [] });
  });

  it("skips what it cannot restore and rejects a malformed chain", async () => {
    const { meta, top } = await chainIn(a);
    const exp = await collectParentChain(a, [top.id]);
    // B has no layers: nothing can be created, nothing half-done.
    const tampered = exp.files.map((f) => (f.name.endsWith(`${meta.id.slice(7)}.json`) ? { ...f, bytes: enc({ x: 1 }) } : f));
    const res = await restoreParentChain(b, tampered);
    expect(res.created).toEqual([]);
    expect(res.skipped.map((s) => s.reason)).toEqual([
      expect.stringMatching(/^create failed/),
      "carried config does not hash to its ID",
      "image not in the store and its config not carried",
    ]);
    await expect(restoreParentChain(b, [])).rejects.toMatchObject({ code: "ERR_NO_PARENT_CHAIN" });
    await expect(restoreParentChain(b, [{ name: "berth-cache/v1/chain.json", bytes: enc({ version: 2 }) }])).rejects.toMatchObject({ code: "ERR_INVALID_PARENT_CHAIN" });
    await expect(
      restoreParentChain(b, [{ name: "berth-cache/v1/chain.json", bytes: enc({ version: 1, images: [{ id: "../x", parent: null }] }) }]),
    ).rejects.toMatchObject({ code: "ERR_INVALID_PARENT_CHAIN" });
    expect(isParentChainEntry(`berth-cache/v1/configs/${sha256("x").slice(7)}.json`)).toBe(true);
    expect(isParentChainEntry("berth-cache/v1/configs/../../x.json")).toBe(false);
  });
});
