import { type Compression, InvalidArgumentError } from "@berth/digest";

/** OCI layer media types by compression. */
export const MEDIA_TYPES = {
  none: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
} as const satisfies Record<Compression, string>;

const KNOWN_LAYER_TYPES: Record<string, Compression> = {
  "application/vnd.oci.image.layer.v1.tar": "none",
  "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
  "application/vnd.docker.image.rootfs.diff.tar": "none",
  "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
};

/**
 * The media type to record for a blob whose bytes showed `compression`:
 * the requested one when it agrees with the bytes (or is not a known layer
 * type), else the OCI type of the detected compression. Plain tars labelled
 * `+gzip` by skopeo/podman are thus recorded as what they are.
 */
export function layerMediaType(compression: Compression, requested?: string): string {
  if (requested !== undefined) {
    if (typeof requested !== "string" || requested.length === 0 || requested.length > 255 || /[\s"]/.test(requested)) {
      throw new InvalidArgumentError(`invalid media type ${JSON.stringify(requested)}`, { code: "ERR_INVALID_MEDIA_TYPE" });
    }
    const known = KNOWN_LAYER_TYPES[requested];
    if (known === undefined || known === compression) return requested;
  }
  return MEDIA_TYPES[compression];
}

/** Validate a holder name; returns the file name used for it under `layers/refs/`. */
export function holderFileName(holder: string): string {
  if (typeof holder !== "string" || holder.length === 0 || Buffer.byteLength(holder) > 180) {
    throw new InvalidArgumentError(`invalid holder ${JSON.stringify(holder)}: expected 1-180 bytes`, { code: "ERR_INVALID_HOLDER" });
  }
  return `h.${Buffer.from(holder, "utf8").toString("base64url")}`;
}

/** The holder a file name under `layers/refs/` stands for (`undefined` if it is no holder file). */
export function holderFromFileName(name: string): string | undefined {
  if (!name.startsWith("h.")) return undefined;
  const holder = Buffer.from(name.slice(2), "base64url").toString("utf8");
  return holderFileName(holder) === name ? holder : undefined;
}
