/**
 * What the registry needs to know of a pushed manifest or index: its media
 * type (the `mediaType` field, else the request's `Content-Type`), the
 * descriptors that must resolve in the repository, its `subject`, its
 * artifact type and annotations, and whether it may be an image the store
 * can hold (a manifest whose config is an image config).
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";
import {
  type Descriptor,
  IMAGE_CONFIG_MEDIA_TYPES,
  INDEX_MEDIA_TYPES,
  MANIFEST_MEDIA_TYPES,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  parseJsonObject,
  validateIndex,
  validateManifest,
} from "@berth/oci";
import { REGISTRY_ERROR_CODES as C } from "../errors.js";

/** A pushed manifest, understood. */
export interface ParsedPush {
  mediaType: string;
  /** Descriptors that must resolve in the repository (config and layers, or child manifests). */
  needed: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
  /** A manifest whose config is an image config: the store may hold it as an image. */
  imageCandidate: boolean;
}

/**
 * Parse and validate a pushed manifest.
 * @throws InvalidArgumentError `ERR_MANIFEST_INVALID` (media type), `@berth/oci`'s `ERR_INVALID_JSON` / `ERR_INVALID_MANIFEST` / `ERR_INVALID_INDEX` / `ERR_INVALID_DESCRIPTOR`
 */
export function parsePush(content: Uint8Array, contentType: string | undefined): ParsedPush {
  const doc = parseJsonObject(content, "manifest");
  const field = typeof doc.mediaType === "string" ? doc.mediaType : undefined;
  if (field && contentType && field !== contentType) {
    throw new InvalidArgumentError(`manifest mediaType ${field} differs from Content-Type ${contentType}`, { code: C.manifestInvalid });
  }
  const mediaType = field ?? contentType ?? (Array.isArray(doc.manifests) ? MEDIA_TYPE_OCI_INDEX : MEDIA_TYPE_OCI_MANIFEST);
  const annotations = isStringMap(doc.annotations) ? doc.annotations : undefined;
  if (MANIFEST_MEDIA_TYPES.has(mediaType)) {
    const m = validateManifest(doc);
    const artifactType = m.artifactType ?? m.config.mediaType;
    return {
      mediaType,
      needed: [m.config, ...m.layers],
      ...(m.subject ? { subject: m.subject } : {}),
      ...(artifactType ? { artifactType } : {}),
      ...(annotations ? { annotations } : {}),
      imageCandidate: IMAGE_CONFIG_MEDIA_TYPES.has(m.config.mediaType) && m.subject === undefined && m.artifactType === undefined,
    };
  }
  if (INDEX_MEDIA_TYPES.has(mediaType)) {
    const i = validateIndex(doc);
    return {
      mediaType,
      needed: [...i.manifests],
      ...(i.subject ? { subject: i.subject } : {}),
      ...(i.artifactType ? { artifactType: i.artifactType } : {}),
      ...(annotations ? { annotations } : {}),
      imageCandidate: false,
    };
  }
  throw new InvalidArgumentError(`manifest media type ${mediaType} is not supported`, { code: C.manifestInvalid });
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string");
}
