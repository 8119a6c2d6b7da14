/**
 * Blob uploads: `POST /v2/<name>/blobs/uploads/` (a session, a monolithic
 * push with `?digest=`, or a mount with `?mount=[&from=]`), `PATCH` of chunks
 * (with `Content-Range`, or streamed without), the closing `PUT ?digest=`
 * (with an optional last chunk), `GET` of a session's state (204) and
 * `DELETE` to cancel it. Bodies stream into the backend; nothing is buffered
 * whole.
 * @module
 */
import { type Digest, hasCode } from "@berth/digest";
import { REGISTRY_ERROR_CODES, type UploadStatus } from "./backend.js";
import { type Call, sendEmpty, singleParam } from "./call.js";
import { RegistryError } from "./errors.js";
import { isValidRepositoryName } from "./names.js";
import { type ByteRange, parseContentRange, uploadRange } from "./range.js";
import { parseDigestParam } from "./route.js";

/** The `Location` of an upload session. */
export function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

function sessionHeaders(name: string, status: UploadStatus): Record<string, string> {
  return {
    Location: uploadLocation(name, status.id),
    Range: uploadRange(status.offset),
    "Docker-Upload-UUID": status.id,
  };
}

function blobCreated(call: Call, name: string, digest: Digest): void {
  sendEmpty(call.res, 201, { Location: `/v2/${name}/blobs/${digest}`, "Docker-Content-Digest": digest });
}

/** True when the request carries a body (a length above 0, or chunked). */
export function hasBody(call: Call): boolean {
  const len = call.req.headers["content-length"];
  if (len !== undefined) return Number(len) > 0;
  return call.req.headers["transfer-encoding"] !== undefined;
}

function declaredLength(call: Call): number | undefined {
  const len = call.req.headers["content-length"];
  return len === undefined ? undefined : Number(len);
}

/**
 * Append the request body to a session. A chunk whose `Content-Range` does
 * not start at the session's offset gets 416 with the session's `Range`.
 */
async function appendBody(call: Call, name: string, id: string, range: ByteRange | undefined): Promise<UploadStatus> {
  const length = declaredLength(call);
  if (range && length !== undefined && range.end - range.start !== length) {
    throw new RegistryError(400, "SIZE_INVALID", `Content-Range covers ${range.end - range.start} bytes but Content-Length is ${length}`);
  }
  try {
    return await call.backend.appendUpload(name, id, {
      ...(range ? { start: range.start } : {}),
      ...(length !== undefined ? { length } : range ? { length: range.end - range.start } : {}),
      body: call.req,
      signal: call.ctx.signal,
    });
  } catch (err) {
    if (hasCode(err, REGISTRY_ERROR_CODES.uploadOffset)) {
      const offset = Number((err as { details?: { offset?: unknown } }).details?.offset ?? 0);
      throw new RegistryError(416, "BLOB_UPLOAD_INVALID", (err as Error).message, {
        headers: sessionHeaders(name, { id, offset }),
        detail: { offset },
        cause: err,
      });
    }
    throw err;
  }
}

/** The `digest` query parameter, required. */
function requiredDigest(call: Call): Digest {
  const value = singleParam(call.query, "digest");
  if (value === undefined) throw new RegistryError(400, "DIGEST_INVALID", "the digest query parameter is required to finish an upload");
  return parseDigestParam(value, "digest");
}

/** `POST /v2/<name>/blobs/uploads/`. `from` has been authorized for pull by the face. */
export async function startUpload(call: Call, name: string): Promise<void> {
  const { backend, query, identity } = call;
  const mount = singleParam(query, "mount");
  if (mount !== undefined) {
    const digest = parseDigestParam(mount, "mount digest");
    const from = mountSource(query);
    const mounted = await backend.mountBlob(name, digest, { ...(from ? { from } : {}), readable: identity.canPull });
    if (mounted) {
      blobCreated(call, name, mounted.digest);
      return;
    }
  }
  const digestParam = mount === undefined ? singleParam(query, "digest") : undefined;
  const digest = digestParam === undefined ? undefined : parseDigestParam(digestParam, "digest");
  const session = await backend.createUpload(name);
  if (digest === undefined) {
    sendEmpty(call.res, 202, sessionHeaders(name, session));
    return;
  }
  // Monolithic: the whole blob in this request's body.
  await finish(call, name, session.id, digest, undefined, true);
}

/** The validated `from` of a mount, if any. @throws RegistryError 400 NAME_INVALID */
export function mountSource(query: URLSearchParams): string | undefined {
  const from = singleParam(query, "from");
  if (from === undefined || from === "") return undefined;
  if (!isValidRepositoryName(from)) throw new RegistryError(400, "NAME_INVALID", `invalid repository name in from: ${JSON.stringify(from.slice(0, 300))}`);
  return from;
}

/** Append (when there is a body) and commit; on failure of a monolithic push, drop the session. */
async function finish(call: Call, name: string, id: string, digest: Digest, range: ByteRange | undefined, monolithic: boolean): Promise<void> {
  try {
    if (hasBody(call) || range) await appendBody(call, name, id, range);
    const blob = await call.backend.commitUpload(name, id, digest, call.ctx.signal);
    blobCreated(call, name, blob.digest);
  } catch (err) {
    if (monolithic) await call.backend.cancelUpload(name, id).catch(() => {});
    throw err;
  }
}

/** `PATCH` of a chunk. */
export async function patchUpload(call: Call, name: string, id: string): Promise<void> {
  const range = parseContentRange(call.req.headers["content-range"]);
  const status = await appendBody(call, name, id, range);
  sendEmpty(call.res, 202, sessionHeaders(name, status));
}

/** The closing `PUT ?digest=`, with an optional last chunk. */
export async function putUpload(call: Call, name: string, id: string): Promise<void> {
  const digest = requiredDigest(call);
  const range = parseContentRange(call.req.headers["content-range"]);
  await finish(call, name, id, digest, range, false);
}

/** `GET` of a session: 204 with its `Range`. */
export async function uploadStatus(call: Call, name: string, id: string): Promise<void> {
  const status = await call.backend.getUpload(name, id);
  sendEmpty(call.res, 204, sessionHeaders(name, status));
}

/** `DELETE` of a session. */
export async function cancelUpload(call: Call, name: string, id: string): Promise<void> {
  await call.backend.cancelUpload(name, id);
  sendEmpty(call.res, 204, {});
}
