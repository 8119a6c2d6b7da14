/**
 * The registry's routes: every `/v2/…` path parsed and validated once into a
 * typed {@link Route} (repository name, digest, tag, upload ID), so handlers
 * never see raw path text. Repository names contain slashes, so the path is
 * read from its end: the last `manifests/<ref>`, `blobs/<digest>`,
 * `blobs/uploads/[<id>]`, `tags/list` or `referrers/<digest>` decides.
 * @module
 */
import { type Digest, parseDigest } from "@berth/digest";
import { isValidTag } from "@berth/oci";
import type { ManifestRef } from "./backend.js";
import { RegistryError } from "./errors.js";
import { isValidRepositoryName, isValidUploadId } from "./names.js";

/** A parsed registry request path. */
export type Route =
  | { kind: "base" }
  | { kind: "catalog" }
  | { kind: "manifest"; name: string; ref: ManifestRef }
  | { kind: "blob"; name: string; digest: Digest }
  | { kind: "uploads"; name: string }
  | { kind: "upload"; name: string; id: string }
  | { kind: "tags"; name: string }
  | { kind: "referrers"; name: string; digest: Digest };

/** The methods each route answers (HEAD wherever GET: node sends no body to a HEAD). */
export const ROUTE_METHODS: Record<Route["kind"], readonly string[]> = {
  base: ["GET", "HEAD"],
  catalog: ["GET", "HEAD"],
  manifest: ["GET", "HEAD", "PUT", "DELETE"],
  blob: ["GET", "HEAD", "DELETE"],
  uploads: ["POST"],
  upload: ["GET", "HEAD", "PATCH", "PUT", "DELETE"],
  tags: ["GET", "HEAD"],
  referrers: ["GET", "HEAD"],
};

function notFound(path: string): RegistryError {
  return new RegistryError(404, "UNSUPPORTED", `no registry endpoint at ${JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}…` : path)}`);
}

function decodeSegment(s: string, path: string): string {
  if (!s.includes("%")) return s;
  let out: string;
  try {
    out = decodeURIComponent(s);
  } catch {
    throw notFound(path);
  }
  if (out.includes("/")) throw notFound(path);
  return out;
}

/** Parse a path's digest segment. @throws RegistryError 400 DIGEST_INVALID */
export function parseDigestParam(value: string, what: string): Digest {
  try {
    return parseDigest(value);
  } catch (cause) {
    throw new RegistryError(400, "DIGEST_INVALID", `invalid ${what} ${JSON.stringify(value.slice(0, 200))}: ${(cause as Error).message}`, {
      detail: { digest: value.slice(0, 200) },
      cause,
    });
  }
}

function parseName(segments: string[], path: string): string {
  if (segments.length === 0) throw notFound(path);
  const name = segments.join("/");
  if (!isValidRepositoryName(name)) {
    throw new RegistryError(400, "NAME_INVALID", `invalid repository name ${JSON.stringify(name.slice(0, 300))}`, { detail: { name: name.slice(0, 300) } });
  }
  return name;
}

/**
 * The manifest reference of a path: a digest when it has a colon, else a tag.
 * A string that can be neither is unknown (404) to readers and deleters and
 * invalid (400) to a push.
 */
function parseManifestRef(ref: string, method: string): ManifestRef {
  if (ref.includes(":")) return { digest: parseDigestParam(ref, "manifest digest") };
  if (isValidTag(ref)) return { tag: ref };
  const shown = JSON.stringify(ref.slice(0, 200));
  if (method === "PUT") throw new RegistryError(400, "MANIFEST_INVALID", `invalid tag ${shown}: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, { detail: { tag: ref.slice(0, 200) } });
  throw new RegistryError(404, "MANIFEST_UNKNOWN", `manifest unknown: no tag ${shown} (not a valid tag)`);
}

/**
 * Parse the path of a `/v2/…` request (without its query).
 * @throws RegistryError 400 NAME_INVALID / DIGEST_INVALID / MANIFEST_INVALID, 404 for no such endpoint
 */
export function parseRoute(method: string, path: string): Route {
  if (path === "/v2/" || path === "/v2") return { kind: "base" };
  if (!path.startsWith("/v2/")) throw notFound(path);
  if (path === "/v2/_catalog") return { kind: "catalog" };
  const raw = path.slice(4).split("/");
  const seg = raw.map((s) => decodeSegment(s, path));
  const n = seg.length;
  const last = seg[n - 1]!;
  // /v2/<name>/blobs/uploads/<id>  and  /v2/<name>/blobs/uploads/
  if (n >= 4 && seg[n - 3] === "blobs" && seg[n - 2] === "uploads") {
    const name = parseName(seg.slice(0, n - 3), path);
    if (last === "") return { kind: "uploads", name };
    if (!isValidUploadId(last)) throw new RegistryError(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown: malformed session ID");
    return { kind: "upload", name, id: last };
  }
  if (n >= 3) {
    const kind = seg[n - 2];
    const name = () => parseName(seg.slice(0, n - 2), path);
    if (kind === "tags" && last === "list") return { kind: "tags", name: name() };
    if (kind === "manifests") return { kind: "manifest", name: name(), ref: parseManifestRef(last, method) };
    if (kind === "blobs" && last === "uploads") return { kind: "uploads", name: name() };
    if (kind === "blobs") return { kind: "blob", name: name(), digest: parseDigestParam(last, "blob digest") };
    if (kind === "referrers") return { kind: "referrers", name: name(), digest: parseDigestParam(last, "subject digest") };
  }
  throw notFound(path);
}
