/** Small shared helpers: JSON parsing, tag normalization. @module */
import { ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME, parseReference } from "@berth/oci";
import { invalidManifest } from "./errors.js";

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Parse a JSON document (an object unless `allowArray`); `ERR_INVALID_MANIFEST` on failure. */
export function parseJson(bytes: Uint8Array, name: string, allowArray = false): unknown {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(bytes));
  } catch (cause) {
    throw invalidManifest(name, `not valid JSON (${(cause as Error).message})`, cause);
  }
  if (typeof v !== "object" || v === null || (Array.isArray(v) && !allowArray))
    throw invalidManifest(name, `expected a JSON ${allowArray ? "array or object" : "object"}`);
  return v;
}

/** Normalize a RepoTags entry (`busybox:latest` → `docker.io/library/busybox:latest`). */
export function normalizeTag(tag: string, where: string): string {
  try {
    const r = parseReference(tag);
    if (r.digest !== undefined || r.tag === undefined) throw new Error("not a name:tag reference");
    return r.string;
  } catch (cause) {
    throw invalidManifest(where, `invalid tag ${JSON.stringify(tag)}`, cause);
  }
}

/**
 * The tag an OCI descriptor's annotations give: `io.containerd.image.name`
 * (a full reference) first, then `org.opencontainers.image.ref.name` when it
 * is a reference (contains `:` or `/`), or a bare tag joined to `repository`.
 */
export function refNameToTag(
  annotations: Record<string, string> | undefined,
  repository?: string,
): { tag?: string; ignored?: string } {
  if (!annotations) return {};
  const full = annotations[ANNOTATION_CONTAINERD_IMAGE_NAME];
  if (full) return { tag: normalizeTag(full, `annotation ${ANNOTATION_CONTAINERD_IMAGE_NAME}`) };
  const ref = annotations[ANNOTATION_REF_NAME];
  if (!ref) return {};
  if (ref.includes(":") || ref.includes("/")) {
    try {
      return { tag: normalizeTag(ref, `annotation ${ANNOTATION_REF_NAME}`) };
    } catch {
      return { ignored: ref };
    }
  }
  if (repository) return { tag: normalizeTag(`${repository}:${ref}`, `annotation ${ANNOTATION_REF_NAME}`) };
  return { ignored: ref };
}

/** JSON with a trailing newline-free, stable layout (keys in insertion order, no spaces). */
export function stableJson(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}
