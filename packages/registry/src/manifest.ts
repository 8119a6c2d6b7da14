/**
 * What the protocol says about manifests on the wire: the `Accept` list,
 * the media type of an answer (its Content-Type, else sniffed from the
 * bytes), schema 1 refused, and `Link` pagination.
 * @module
 */
import { FailedPreconditionError, isDigest } from "@berth/digest";
import {
  isValidTag,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_DOCKER_MANIFEST_V1,
  MEDIA_TYPE_DOCKER_MANIFEST_V1_SIGNED,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
} from "@berth/oci";
import { REGISTRY_ERROR_CODES } from "./errors.js";
import { header, type RegistryResponse } from "./transport/types.js";

/** The `Accept` list of manifest requests: every manifest and index type berth reads (never schema 1). */
export const MANIFEST_ACCEPT: readonly string[] = [
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
];

/** The media type of manifest bytes, when the registry's Content-Type is missing or generic. */
export function sniffMediaType(bytes: Uint8Array): string | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as { mediaType?: unknown; manifests?: unknown; config?: unknown; schemaVersion?: unknown };
    if (typeof v.mediaType === "string") return v.mediaType;
    if (v.schemaVersion === 1) return MEDIA_TYPE_DOCKER_MANIFEST_V1;
    if (Array.isArray(v.manifests)) return MEDIA_TYPE_OCI_INDEX;
    if (v.config !== undefined) return MEDIA_TYPE_OCI_MANIFEST;
  } catch {
    // not JSON: the caller reports it
  }
  return undefined;
}

export function contentType(res: RegistryResponse): string | undefined {
  const ct = header(res, "content-type")?.split(";")[0]?.trim();
  return ct && ct !== "application/json" && ct !== "text/plain" && ct !== "application/octet-stream" ? ct : undefined;
}

export function refuseSchema1(mediaType: string, what: string): void {
  if (mediaType === MEDIA_TYPE_DOCKER_MANIFEST_V1 || mediaType === MEDIA_TYPE_DOCKER_MANIFEST_V1_SIGNED) {
    throw new FailedPreconditionError(`${what}: Docker schema 1 manifests are not supported`, { code: REGISTRY_ERROR_CODES.MANIFEST_UNSUPPORTED });
  }
}

/** The `rel="next"` URL of a `Link` header, resolved against the request URL. */
export function nextLink(res: RegistryResponse, base: URL): URL | undefined {
  const link = header(res, "link");
  if (!link) return undefined;
  for (const part of link.split(",")) {
    const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(part);
    if (m) return new URL(m[1]!, base);
  }
  return undefined;
}

/** True for a tag or a digest (what may follow `manifests/`). */
export function isTagOrDigest(ref: string): boolean {
  return isValidTag(ref) || isDigest(ref);
}
