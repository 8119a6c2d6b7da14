/**
 * Manifests: `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.
 *
 * Manifests are served byte for byte as pushed, under the media type they
 * were stored with; berth never converts (no schema 1). Content negotiation:
 * a request by digest is always answered (the digest fixes the bytes, as the
 * reference registry does); a request by tag whose `Accept` lists only other
 * types (and no wildcard) gets 404 MANIFEST_UNKNOWN saying what is stored,
 * as distribution answers for OCI types it is not asked for.
 * @module
 */
import type { Digest } from "@berth/digest";
import { readBody } from "../http.js";
import type { ManifestRef, StoredManifest } from "./backend.js";
import { type Call, deleteDisabled, sendEmpty } from "./call.js";
import { notModified } from "./blobs.js";
import { RegistryError } from "./errors.js";

/** The media types an `Accept` header (or several) lists, lowercased, without parameters; `q=0` entries dropped. */
export function acceptedTypes(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(",") : header;
  const out: string[] = [];
  for (const part of text.split(",")) {
    const [type, ...params] = part.split(";");
    const t = type!.trim().toLowerCase();
    if (t === "") continue;
    if (params.some((p) => /^\s*q\s*=\s*0(?:\.0*)?\s*$/i.test(p))) continue;
    out.push(t);
  }
  return out;
}

/** May a manifest of `mediaType` be answered to a request with these accepted types? */
export function acceptable(accepted: string[], mediaType: string): boolean {
  if (accepted.length === 0) return true;
  const mt = mediaType.toLowerCase();
  return accepted.some((a) => a === mt || a === "*/*" || (a.endsWith("/*") && mt.startsWith(a.slice(0, -1))));
}

function manifestHeaders(m: StoredManifest): Record<string, string | number> {
  return {
    "Content-Type": m.mediaType,
    "Content-Length": m.content.byteLength,
    "Docker-Content-Digest": m.digest,
    ETag: `"${m.digest}"`,
  };
}

/** `GET` and `HEAD` of a manifest. */
export async function getManifest(call: Call, name: string, ref: ManifestRef, head: boolean): Promise<void> {
  const { req, res } = call;
  const manifest = await call.backend.getManifest(name, ref);
  if (ref.tag !== undefined) {
    const accepted = acceptedTypes(req.headers.accept);
    if (!acceptable(accepted, manifest.mediaType)) {
      throw new RegistryError(
        404,
        "MANIFEST_UNKNOWN",
        `manifest ${name}:${ref.tag} is ${manifest.mediaType}, which the Accept header does not list (berth serves manifests as pushed, without conversion)`,
        { detail: { tag: ref.tag, mediaType: manifest.mediaType } },
      );
    }
  }
  if (notModified(req.headers["if-none-match"], `"${manifest.digest}"`)) {
    sendEmpty(res, 304, { ETag: `"${manifest.digest}"`, "Docker-Content-Digest": manifest.digest });
    return;
  }
  res.writeHead(200, manifestHeaders(manifest));
  res.end(head ? undefined : manifest.content);
}

/** `PUT` of a manifest. */
export async function putManifest(call: Call, name: string, ref: ManifestRef): Promise<void> {
  const limit = call.limits.maxManifestSize;
  const content = await readBody(call.req, limit, "manifest");
  const ct = call.req.headers["content-type"];
  const contentType = ct === undefined ? undefined : ct.split(";")[0]!.trim();
  const result = await call.backend.putManifest(name, { content, contentType: contentType || undefined, reference: ref, membersOnly: call.identity.enforced });
  const headers: Record<string, string> = {
    Location: `/v2/${name}/manifests/${result.digest}`,
    "Docker-Content-Digest": result.digest,
  };
  if (result.subject) headers["OCI-Subject"] = result.subject;
  sendEmpty(call.res, 201, headers);
}

/** `DELETE` of a manifest (by digest) or of a tag. */
export async function deleteManifest(call: Call, name: string, ref: ManifestRef): Promise<void> {
  if (!call.deleteEnabled) throw deleteDisabled();
  if (ref.digest !== undefined) await call.backend.deleteManifest(name, ref.digest as Digest);
  else await call.backend.deleteTag(name, ref.tag);
  sendEmpty(call.res, 202, {});
}
