/**
 * Test images written as OCI layouts: real tar layers (random file contents,
 * gzip'd), an image config with the layers' DiffIDs, one manifest per
 * platform and, for several platforms, an index.
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { type Digest, sha256 } from "@berth/digest";
import { MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_MANIFEST, type Platform } from "@berth/oci";
import { OciLayout } from "../src/layout.js";

/** A ustar archive of regular files. */
export function tarOf(files: { name: string; data: Uint8Array }[]): Uint8Array {
  const blocks: Buffer[] = [];
  for (const f of files) {
    const h = Buffer.alloc(512);
    h.write(f.name, 0, 100, "utf8");
    h.write("0000644\0", 100);
    h.write("0000000\0", 108);
    h.write("0000000\0", 116);
    h.write(`${f.data.length.toString(8).padStart(11, "0")}\0`, 124);
    h.write("00000000000\0", 136);
    h.write("        ", 148);
    h.write("0", 156);
    h.write("ustar\0", 257);
    h.write("00", 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    blocks.push(h, Buffer.from(f.data), Buffer.alloc((512 - (f.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return new Uint8Array(Buffer.concat(blocks));
}

export interface TestImage {
  dir: string;
  /** The root: the index, or the only manifest. */
  digest: Digest;
  mediaType: string;
  /** Manifest digests per platform string. */
  manifests: Record<string, Digest>;
  /** Every layer blob digest and size. */
  layers: { digest: Digest; size: number; diffId: Digest }[];
  /** Sum of all blob sizes (layers + configs). */
  blobBytes: number;
}

async function put(layout: OciLayout, bytes: Uint8Array): Promise<Digest> {
  return layout.writeBytes(bytes);
}

/**
 * Write an image into a (new) layout at `dir` under ref name `tag`: `layerSizes`
 * random bytes per layer (one file each; gzip leaves random data as large);
 * `platforms` > 1 makes an index whose manifests share the first layer.
 */
export async function writeTestImage(dir: string, tag: string, options: { layerSizes: number[]; platforms?: string[] }): Promise<TestImage> {
  const layout = await OciLayout.open(dir, { create: true });
  const platforms = options.platforms ?? ["linux/amd64"];
  const layers: TestImage["layers"] = [];
  let blobBytes = 0;
  const makeLayer = async (size: number, name: string) => {
    const tar = tarOf([{ name, data: randomBytes(size) }]);
    const gz = gzipSync(tar, { level: 1 });
    const digest = await put(layout, gz);
    const l = { digest, size: gz.length, diffId: sha256(tar) };
    layers.push(l);
    blobBytes += gz.length;
    return l;
  };
  const shared = await makeLayer(options.layerSizes[0] ?? 1024, "shared.bin");
  const manifests: Record<string, Digest> = {};
  const descs = [];
  for (const p of platforms) {
    const [os, architecture, variant] = p.split("/") as [string, string, string | undefined];
    const own = [];
    for (const [i, size] of options.layerSizes.slice(1).entries()) own.push(await makeLayer(size, `${p.replaceAll("/", "-")}-${i}.bin`));
    const all = [shared, ...own];
    const config = new TextEncoder().encode(
      JSON.stringify({ architecture, os, ...(variant ? { variant } : {}), config: { Cmd: ["/bin/sh"] }, rootfs: { type: "layers", diff_ids: all.map((l) => l.diffId) }, history: all.map(() => ({ created_by: "test" })) }),
    );
    const configDigest = await put(layout, config);
    blobBytes += config.length;
    const manifest = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_OCI_MANIFEST,
        config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configDigest, size: config.length },
        layers: all.map((l) => ({ mediaType: MEDIA_TYPE_OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
      }),
    );
    const md = await put(layout, manifest);
    manifests[p] = md;
    const platform: Platform = { architecture, os, ...(variant ? { variant } : {}) };
    descs.push({ mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: md, size: manifest.length, platform });
  }
  if (descs.length === 1) {
    const d = descs[0]!;
    await layout.setRef(tag, d);
    return { dir, digest: d.digest, mediaType: d.mediaType, manifests, layers, blobBytes };
  }
  const index = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: descs }, null, 3));
  const id = await put(layout, index);
  await layout.setRef(tag, { mediaType: MEDIA_TYPE_OCI_INDEX, digest: id, size: index.length });
  return { dir, digest: id, mediaType: MEDIA_TYPE_OCI_INDEX, manifests, layers, blobBytes };
}

/** Every blob file of a layout: digest → bytes' sha256 (for byte-identity checks). */
export async function layoutBlobs(dir: string): Promise<string[]> {
  return (await fsp.readdir(path.join(dir, "blobs", "sha256"))).sort();
}
