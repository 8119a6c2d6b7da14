/**
 * The grammars of the registry's path values: repository names and upload
 * session IDs (tags: `isValidTag` of `@berth/oci`). Checked once, when the
 * path is parsed.
 * @module
 */

/** Longest repository name accepted (clients limit host + "/" + name to 255). */
export const MAX_NAME_LENGTH = 255;

// spec.md: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
const COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const UPLOAD_ID_RE = /^[A-Za-z0-9_.=-]{1,128}$/;

/** True when `name` is a repository name of the spec's grammar, at most {@link MAX_NAME_LENGTH} characters. */
export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

/** True when `id` can be an upload session ID (see `UploadStatus.id`). */
export function isValidUploadId(id: string): boolean {
  return UPLOAD_ID_RE.test(id);
}
