import path from "node:path";
import { type Digest, digestHex, parseDigest, UnsupportedAlgorithmError } from "@berth/digest";

/**
 * Paths of a store root. Every path that contains a digest is built from a
 * digest validated by `parseDigest` (sha256 only), never from raw input.
 */
export class StorePaths {
  readonly root: string;
  readonly blobs: string;
  readonly ingest: string;
  readonly layers: string;
  readonly layerRecords: string;
  readonly layerRefs: string;
  readonly leases: string;
  readonly locks: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.blobs = path.join(this.root, "blobs", "sha256");
    this.ingest = path.join(this.root, "ingest");
    this.layers = path.join(this.root, "layers");
    this.layerRecords = path.join(this.layers, "sha256");
    this.layerRefs = path.join(this.layers, "refs", "sha256");
    this.leases = path.join(this.root, "leases");
    this.locks = path.join(this.root, "locks");
  }

  /** `blobs/sha256/<hex>` of a validated digest. */
  blob(d: Digest): string {
    return path.join(this.blobs, digestHex(d));
  }

  /** `layers/sha256/<hex>.json`: the record of a layer by ChainID. */
  layerRecord(chainID: Digest): string {
    return path.join(this.layerRecords, `${digestHex(chainID)}.json`);
  }

  /** `layers/refs/sha256/<hex>/`: one file per holder of the layer. */
  layerRefDir(chainID: Digest): string {
    return path.join(this.layerRefs, digestHex(chainID));
  }

  /** `leases/<id>/`. */
  lease(id: string): string {
    return path.join(this.leases, id);
  }
}

const HEX64 = /^[a-f0-9]{64}$/;

/** True for a file name that is 64 lowercase hex characters. */
export function isHex64(name: string): boolean {
  return HEX64.test(name);
}

/**
 * Validate a digest argument: any malformed, path-like or non-sha256 digest is
 * refused with a typed error (`ERR_DIGEST_FORMAT`, `ERR_DIGEST_LENGTH`,
 * `ERR_DIGEST_UNSUPPORTED`) before any path is built.
 */
export function checkDigest(input: Digest | string, what = "digest"): Digest {
  const d = parseDigest(input);
  if (!d.startsWith("sha256:")) {
    throw new UnsupportedAlgorithmError(`${what} ${d}: only sha256 content is stored`, { details: { digest: d } });
  }
  return d;
}
