/**
 * `@berth/image-store`: Docker's image store and reference store over a berth
 * store root that is also an OCI image layout, plus the OCI/Docker JSON types.
 *
 * @example
 * ```ts
 * import { openStore } from "@berth/image-store";
 * const store = await openStore({ root: "/tmp/berth" });
 * const layer = await store.layers.register(fs.createReadStream("layer.tar"));
 * const image = await store.images.create(configBytes);
 * await store.references.tag("busybox:1", image.id);
 * await store.references.resolve("busybox:1"); // image.id
 * ```
 * @module
 */
export type {
  CreateImageOptions,
  DeleteOptions,
  DeleteResult,
  FsckOptions,
  MapOptions,
  FsckProblem,
  FsckReport,
  Image,
  ImageStore,
  ReferenceStore,
  Store,
  TagOptions,
} from "./api.js";
export { IMAGE_HOLDER_PREFIX, IMAGES_LOCK, MAX_DOCUMENT_SIZE } from "./core.js";
export { ImageStoreErrorCode, type ImageStoreErrorCodeValue } from "./errors.js";
export { FsStore } from "./facade.js";
export { parseImageId } from "./ids.js";
export { FsImageStore } from "./images.js";
export { buildManifest } from "./manifest.js";
export { type OpenStoreOptions, openMemoryStore, openStore } from "./open.js";
export { FsReferenceStore } from "./references.js";
export { FsPinStore, MemoryPinStore, PINS_DIR, type PinRecord, type PinStore } from "./pins.js";
export { ANNOTATION_BERTH_IMAGE_ID, INDEX_FILE, OCI_LAYOUT_FILE } from "./layout.js";
export * from "@berth/oci";
