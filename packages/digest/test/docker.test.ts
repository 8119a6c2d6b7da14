// Checked against a real Docker daemon: build an image (busybox base + layers
// from the classic builder), `docker save` it, compute DiffIDs of every
// layer.tar with layerDigests and ChainIDs with chainIds, and compare with
// `docker image inspect` (RootFS.Layers) and the daemon's layer database
// (<data-root>/image/vfs/layerdb/sha256/<chainid>/diff). Skips without docker
// locally; fails under BERTH_REQUIRE_PEERS=1 (dockerd() throws then).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { classicImage, dockerd, dockerSave, inspect } from "@berth/peers";
import { describe, expect, it } from "vitest";
import { chainIdMany, chainIds, digestHex, layerDigests, parseDigest } from "../src/index.js";
import * as wasm from "../src/wasm.js";

/** Regular files of a (small) tar archive by name; enough for `docker save` output. */
function untar(buf: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = (a: number, b: number) => new TextDecoder().decode(buf.subarray(a, b)).replace(/\0.*$/s, "");
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= buf.length) {
    if (buf.subarray(off, off + 512).every((b) => b === 0)) break;
    const size = Number.parseInt(text(off + 124, off + 136).trim() || "0", 8);
    const type = String.fromCharCode(buf[off + 156]!);
    const prefix = text(off + 345, off + 500);
    let name = longName ?? (prefix ? `${prefix}/${text(off, off + 100)}` : text(off, off + 100));
    longName = undefined;
    const data = buf.subarray(off + 512, off + 512 + size);
    if (type === "x") {
      const m = /\d+ path=([^\n]*)\n/.exec(new TextDecoder().decode(data));
      if (m) longName = m[1];
    } else if (type === "L") {
      longName = new TextDecoder().decode(data).replace(/\0.*$/s, "");
    } else if (type === "0" || type === "\0") {
      files.set(name, data);
    }
    name = "";
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

describe("against a real Docker daemon", () => {
  it("DiffIDs and ChainIDs of a saved image match docker inspect and the layer database", async (ctx) => {
    const peer = await dockerd();
    if (!peer) return ctx.skip();
    const image = await classicImage(peer);
    const info = await inspect(peer, image.tag);
    const layers = info.RootFS.Layers ?? [];
    expect(layers.length).toBeGreaterThanOrEqual(3);

    const dir = await mkdtemp(join(tmpdir(), "berth-digest-"));
    try {
      const file = join(dir, "image.tar");
      await dockerSave(peer, image.tag, file);
      const files = untar(new Uint8Array(await readFile(file)));
      const manifest = JSON.parse(new TextDecoder().decode(files.get("manifest.json")!)) as { Layers: string[]; Config: string }[];
      const diffIds: string[] = [];
      for (const path of manifest[0]!.Layers) {
        const tar = files.get(path);
        expect(tar, `layer ${path} in the archive`).toBeDefined();
        const d = await layerDigests([tar!.subarray(0, 1000), tar!.subarray(1000)]);
        expect(d.compression).toBe("none");
        diffIds.push(d.diffID);
      }
      expect(diffIds).toEqual(layers);

      const ids = chainIds(diffIds);
      expect(wasm.chainIds(diffIds)).toEqual(ids);
      expect(chainIdMany([diffIds, diffIds, diffIds, diffIds.slice(0, 2)])).toEqual([ids.at(-1), ids.at(-1), ids.at(-1), ids[1]]);
      // The daemon's layer store is keyed by ChainID; each entry records its DiffID.
      for (let i = 0; i < ids.length; i++) {
        const chain = parseDigest(ids[i]!);
        const diff = await readFile(join(peer.dataRoot, "image", "vfs", "layerdb", "sha256", digestHex(chain), "diff"), "utf8");
        expect(diff.trim(), `layerdb entry of ChainID ${chain}`).toBe(diffIds[i]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
