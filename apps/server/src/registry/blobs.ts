/**
 * Blob reads and deletes: `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`,
 * with `Range` (206, `Content-Range`), `ETag` and `If-None-Match`.
 *
 * Bytes go out through `@berth/layer-store`'s `pumpReader`: 512 KiB reads
 * into four buffers reused once the socket took them, the next read running
 * while the last chunk is written, and writes wait for the socket to drain —
 * memory per download is those four buffers whatever the blob's size.
 * @module
 */
import type { ServerResponse } from "node:http";
import type { Digest } from "@berth/digest";
import { pumpReader } from "@berth/layer-store";
import type { BlobReader } from "./backend.js";
import { type Call, blobScope, deleteDisabled, sendEmpty } from "./call.js";
import { parseRange } from "./range.js";

function blobHeaders(digest: Digest): Record<string, string> {
  return {
    "Content-Type": "application/octet-stream",
    "Docker-Content-Digest": digest,
    ETag: `"${digest}"`,
    "Accept-Ranges": "bytes",
    "Cache-Control": "max-age=31536000",
  };
}

/** True when `If-None-Match` names this ETag (or `*`). */
export function notModified(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(",").some((t) => {
    const v = t.trim().replace(/^W\//, "");
    return v === "*" || v === etag;
  });
}

/** Write bytes `[start, end)` of a blob to the response and end it. */
async function sendBlob(res: ServerResponse, reader: BlobReader, start: number, end: number, signal: AbortSignal): Promise<void> {
  await pumpReader(reader, res, { start, end, signal });
  res.end();
}

/** `GET` and `HEAD` of a blob. */
export async function getBlob(call: Call, name: string, digest: Digest, head: boolean): Promise<void> {
  const { backend, req, res, ctx } = call;
  const scope = blobScope(call, name);
  const etag = `"${digest}"`;
  if (head) {
    const info = await backend.statBlob(scope, digest);
    res.writeHead(200, { ...blobHeaders(info.digest), "Content-Length": info.size });
    res.end();
    return;
  }
  const reader = await backend.openBlob(scope, digest);
  try {
    if (notModified(req.headers["if-none-match"], etag)) {
      sendEmpty(res, 304, { ETag: etag, "Docker-Content-Digest": digest });
      return;
    }
    const range = parseRange(req.headers.range, reader.size);
    const ifRange = req.headers["if-range"];
    if (range && (ifRange === undefined || ifRange === etag)) {
      res.writeHead(206, {
        ...blobHeaders(reader.digest),
        "Content-Length": range.end - range.start,
        "Content-Range": `bytes ${range.start}-${range.end - 1}/${reader.size}`,
      });
      await sendBlob(res, reader, range.start, range.end, ctx.signal);
      return;
    }
    res.writeHead(200, { ...blobHeaders(reader.digest), "Content-Length": reader.size });
    await sendBlob(res, reader, 0, reader.size, ctx.signal);
  } finally {
    await reader.close();
  }
}

/** `DELETE` of a blob. */
export async function deleteBlob(call: Call, name: string, digest: Digest): Promise<void> {
  if (!call.deleteEnabled) throw deleteDisabled();
  await call.backend.deleteBlob(blobScope(call, name), digest);
  sendEmpty(call.res, 202, { "Docker-Content-Digest": digest });
}
