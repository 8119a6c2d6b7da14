import { type Digest, sha256 } from "@berth/digest";
import { describe, expect, it } from "vitest";
import { copyImage } from "./copy.js";
import type { ImageDestination, ImageSource } from "./endpoints.js";
import { registryError } from "./errors.js";

const enc = new TextEncoder();
const layer = enc.encode("layer bytes");
const config = enc.encode(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(layer)] } }));
const manifest = enc.encode(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
  }),
);
const blobs = new Map<Digest, Uint8Array>([
  [sha256(config), config],
  [sha256(layer), layer],
]);

const source: ImageSource = {
  description: "memory",
  root: async () => ({ bytes: manifest, digest: sha256(manifest), size: manifest.length, mediaType: "application/vnd.oci.image.manifest.v1+json" }),
  manifest: async () => manifest,
  async *blob(desc, offset) {
    yield blobs.get(desc.digest)!.subarray(offset);
  },
};

/**
 * A registry whose HEAD finds the config once more after its garbage collector
 * took it (berth serve's lenient HEAD beside an online GC): the first manifest
 * PUT is refused with `refusal`.
 */
function losingRegistry(refusal: string) {
  const stored = new Map<Digest, Uint8Array>();
  const puts: string[] = [];
  let lostOnce = false;
  const dst: ImageDestination = {
    description: "losing registry",
    async putBlob(desc, open) {
      if (desc.digest === sha256(config) && !lostOnce) {
        lostOnce = true;
        puts.push(`${desc.digest} exists`);
        return { status: "exists", bytes: 0 };
      }
      if (stored.has(desc.digest)) return { status: "exists", bytes: 0 };
      const parts: Uint8Array[] = [];
      for await (const c of open(0)) parts.push(c);
      stored.set(desc.digest, Buffer.concat(parts));
      puts.push(`${desc.digest} uploaded`);
      return { status: "uploaded", bytes: desc.size };
    },
    hasManifest: async () => false,
    async putManifest() {
      const missing = [...blobs.keys()].filter((d) => !stored.has(d));
      if (missing.length > 0) throw registryError("PUT manifest", 400, [{ code: refusal, message: `manifest refers to ${missing[0]}` }]);
      puts.push("manifest");
    },
  };
  return { dst, puts };
}

describe("copyImage", () => {
  it("sends a blob again and retries once when the registry lost it between its HEAD and the manifest PUT", async () => {
    const { dst, puts } = losingRegistry("MANIFEST_BLOB_UNKNOWN");
    const r = await copyImage(source, dst);
    expect(r.manifestsWritten).toBe(1);
    expect(puts.filter((p) => p.startsWith(sha256(config)))).toEqual([`${sha256(config)} exists`, `${sha256(config)} uploaded`]);
    expect(puts.at(-1)).toBe("manifest");
  });

  it("does not retry any other refusal", async () => {
    const { dst, puts } = losingRegistry("MANIFEST_INVALID");
    await expect(copyImage(source, dst)).rejects.toMatchObject({ code: "ERR_REGISTRY_REJECTED" });
    expect(puts).not.toContain("manifest");
  });
});
