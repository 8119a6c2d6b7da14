/**
 * Byte ranges: `Range` on blob GETs (RFC 9110, one range) and
 * `Content-Range` on upload chunks (the spec's `<start>-<end>`, also with the
 * `bytes ` prefix and `/total` suffix some clients add).
 * @module
 */
import { RegistryError } from "./errors.js";

/** A half-open byte range `[start, end)`. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The range a blob GET asks for, within `size`: undefined for the whole blob
 * (no header, a header that is not one `bytes=` range, several ranges: RFC
 * 9110 lets a server ignore those and answer 200).
 * @throws RegistryError 416 RANGE_INVALID when the range starts past the end
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  const unsatisfiable = () =>
    new RegistryError(416, "RANGE_INVALID", `range ${JSON.stringify(header.slice(0, 100))} is outside the blob (${size} bytes)`, {
      headers: { "Content-Range": `bytes */${size}` },
    });
  if (m[1] === "") {
    // suffix: the last N bytes
    const n = Number(m[2]);
    if (n === 0) throw unsatisfiable();
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size : Math.min(size, Number(m[2]) + 1);
  if (!Number.isSafeInteger(start) || start >= size) throw unsatisfiable();
  if (end <= start) return undefined; // last < first: syntactically invalid, ignored
  return { start, end };
}

/**
 * The `Content-Range` of an upload chunk, as `[start, end)`; undefined when absent.
 * @throws RegistryError 416 BLOB_UPLOAD_INVALID when malformed or backwards
 */
export function parseContentRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d{1,15}|\*))?$/.exec(header.trim());
  const start = m ? Number(m[1]) : Number.NaN;
  const last = m ? Number(m[2]) : Number.NaN;
  if (!m || last < start) {
    throw new RegistryError(416, "BLOB_UPLOAD_INVALID", `invalid Content-Range ${JSON.stringify(header.slice(0, 100))}: expected <start>-<end>`);
  }
  return { start, end: last + 1 };
}

/** The `Range` header value of an upload at `offset` bytes (`0-<offset-1>`; `0-0` when empty, as distribution writes it). */
export function uploadRange(offset: number): string {
  return `0-${Math.max(0, offset - 1)}`;
}
