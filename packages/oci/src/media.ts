/**
 * Media types and annotation keys of the OCI image spec, Docker's image
 * formats and the tools berth meets (BuildKit's cache, artifacts), in one
 * place; plus the mapping between a layer's media type and its compression.
 * @module
 */
import { type Compression, InvalidArgumentError } from "@berth/digest";

/** OCI image manifest. */
export const MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index. */
export const MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** OCI image config. */
export const MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** OCI uncompressed layer tar. */
export const MEDIA_TYPE_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";
/** OCI gzip-compressed layer tar. */
export const MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
/** OCI zstd-compressed layer tar. */
export const MEDIA_TYPE_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
/** OCI non-distributable layer (deprecated by the spec, still read). */
export const MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/** OCI non-distributable gzip layer. */
export const MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/** Docker image manifest, schema 2. */
export const MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker manifest list. */
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker image config. */
export const MEDIA_TYPE_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
/** Docker gzip layer. */
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/** Docker uncompressed layer (rarely used by registries, accepted by the daemon). */
export const MEDIA_TYPE_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar";
/** Docker foreign (non-distributable) layer. */
export const MEDIA_TYPE_DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/** Contents of an OCI layout's `oci-layout` file. */
export const OCI_LAYOUT_VERSION = "1.0.0";
/** Annotation naming a manifest in an OCI layout's `index.json` (skopeo `oci:<dir>:<name>`, umoci). */
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";
/** containerd's annotation with the full image name (Docker 25+ `docker save` writes it too). */
export const ANNOTATION_CONTAINERD_IMAGE_NAME = "io.containerd.image.name";

/** Every layer media type berth accepts in a manifest. */
export const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_ZSTD,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP,
  MEDIA_TYPE_DOCKER_LAYER,
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_LAYER_FOREIGN,
]);
/** The OCI empty descriptor's media type (`{}`), the config of artifacts without one. */
export const MEDIA_TYPE_OCI_EMPTY = "application/vnd.oci.empty.v1+json";
/** BuildKit's cache config (registry cache, image-manifest and index forms). */
export const MEDIA_TYPE_BUILDKIT_CACHE_CONFIG = "application/vnd.buildkit.cacheconfig.v0";
/** Docker schema 1 manifest (refused: berth never reads or writes it). */
export const MEDIA_TYPE_DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json";
/** Docker schema 1 signed manifest (refused). */
export const MEDIA_TYPE_DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/** Media types of a single-platform manifest (OCI and Docker schema 2). */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST]);
/** Media types of an index (OCI index, Docker manifest list). */
export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST]);
/** Media types of an image config (OCI and Docker). */
export const IMAGE_CONFIG_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_DOCKER_CONFIG]);

/** The OCI layer media type for each compression (what berth records for bytes it detected itself). */
export const MEDIA_TYPES = {
  none: MEDIA_TYPE_OCI_LAYER,
  gzip: MEDIA_TYPE_OCI_LAYER_GZIP,
  zstd: MEDIA_TYPE_OCI_LAYER_ZSTD,
} as const satisfies Record<Compression, string>;

/** The Docker schema 2 layer media type for each compression (zstd has no official one: the OCI type is used). */
export const DOCKER_LAYER_MEDIA_TYPES = {
  none: MEDIA_TYPE_DOCKER_LAYER,
  gzip: MEDIA_TYPE_DOCKER_LAYER_GZIP,
  zstd: MEDIA_TYPE_OCI_LAYER_ZSTD,
} as const satisfies Record<Compression, string>;

const LAYER_COMPRESSION: Record<string, Compression> = {
  [MEDIA_TYPE_OCI_LAYER]: "none",
  [MEDIA_TYPE_OCI_LAYER_GZIP]: "gzip",
  [MEDIA_TYPE_OCI_LAYER_ZSTD]: "zstd",
  [MEDIA_TYPE_DOCKER_LAYER]: "none",
  [MEDIA_TYPE_DOCKER_LAYER_GZIP]: "gzip",
  "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
  [MEDIA_TYPE_DOCKER_LAYER_FOREIGN]: "gzip",
  [MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE]: "none",
  [MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP]: "gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
};

/** The compression a layer media type announces, or `undefined` for a type that is no known layer type. */
export function layerCompression(mediaType: string): Compression | undefined {
  return LAYER_COMPRESSION[mediaType];
}

/**
 * The media type to record for a layer blob whose bytes showed `compression`:
 * the requested one when it agrees with the bytes (or is not a known layer
 * type), else the OCI type of the detected compression. Plain tars labelled
 * `+gzip` by skopeo and podman are thus recorded as what they are.
 * @throws InvalidArgumentError `ERR_INVALID_MEDIA_TYPE` for a requested type that is not a media type
 */
export function layerMediaType(compression: Compression, requested?: string): string {
  if (requested !== undefined) {
    if (!isMediaType(requested)) {
      throw new InvalidArgumentError(`invalid media type ${JSON.stringify(requested)}`, { code: "ERR_INVALID_MEDIA_TYPE" });
    }
    const known = LAYER_COMPRESSION[requested];
    if (known === undefined || known === compression) return requested;
  }
  return MEDIA_TYPES[compression];
}

/** A plausible media type: 1–255 characters without whitespace or quotes. */
export function isMediaType(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= 255 && !/[\s"]/.test(value);
}
