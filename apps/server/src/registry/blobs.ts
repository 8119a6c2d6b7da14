/**
 * Blob reads and deletes: `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`,
 * with `Range` (206, `Content-Range`), `ETag` and `If-None-Match`.
 *
 * Bytes go out in 1 MiB reads, the next read running while the previous
 * chunk is written, and writes wait for the socket to drain: memory per
 * download stays at about two chunks whatever the blob's size.
 * @module
 */
import type { ServerResponse } from "node:http";
import type { Digest } from "@berth/digest";
import type { BlobReader } from "./backend.js";
import { type Call, blobScope, deleteDisabled, sendEmpty } from "./call.js";
import { parseRange } from "./range.js";

/** Bytes per read of a blob. */
export const BLOB_CHUNK = 1024 * 1024;

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

function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", gone);
      signal.removeEventListener("abort", gone);
      resolve();
    };
    const gone = () => {
      res.off("drain", done);
      res.off("close", gone);
      signal.removeEventListener("abort", gone);
      reject(signal.reason ?? new Error("client disconnected"));
    };
    res.on("drain", done);
    res.on("close", gone);
    signal.addEventListener("abort", gone);
  });
}

/** Write bytes `[start, end)` of a blob to the response and end it. */
export async function pumpBlob(res: ServerResponse, reader: BlobReader, start: number, end: number, signal: AbortSignal): Promise<void> {
  const read = async (pos: number): Promise<Uint8Array> => {
    const buf = Buffer.allocUnsafe(Math.min(BLOB_CHUNK, end - pos));
    const n = await reader.read(buf, pos);
    if (n <= 0) throw new Error(`blob ${reader.digest} ended at ${pos} of ${reader.size} bytes`);
    return n === buf.byteLength ? buf : buf.subarray(0, n);
  };
  let pos = start;
  let next: Promise<Uint8Array> | undefined = pos < end ? read(pos) : undefined;
  while (next) {
    const chunk = await next;
    pos += chunk.byteLength;
    next = pos < end ? read(pos) : undefined;
    // Do not leave a rejected read unobserved if the write below throws.
    next?.catch(() => {});
    if (signal.aborted) throw signal.reason;
    if (!res.write(chunk)) await drained(res, signal);
  }
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
      await pumpBlob(res, reader, range.start, range.end, ctx.signal);
      return;
    }
    res.writeHead(200, { ...blobHeaders(reader.digest), "Content-Length": reader.size });
    await pumpBlob(res, reader, 0, reader.size, ctx.signal);
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
