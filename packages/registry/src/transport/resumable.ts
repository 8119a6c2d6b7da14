/**
 * The resumable layer (go-containerregistry `resumable.go`): a blob body
 * that, when its connection breaks, asks again with `Range: bytes=<n>-` and
 * carries on from byte n, so a reset costs only what was in flight. The same
 * mechanism starts a download at an offset (a pull resumed from a partial file).
 * @module
 */
import { DataIntegrityError } from "@berth/digest";
import { protocolError, REGISTRY_ERROR_CODES } from "../errors.js";
import { isTransientNetworkError } from "./http.js";
import { discard, header, type RegistryRequest, type RegistryResponse, type Transport } from "./types.js";

/** Options of {@link resumableBody}. */
export interface ResumableOptions {
  /** First byte wanted. Default 0. */
  offset?: number;
  /** The blob's size, when known (the body ends there; a longer body is an error). */
  size?: number;
  /** Reconnections allowed. Default 5. */
  maxResumes?: number;
  /** Turns a non-2xx response into an error (the caller's mapping of statuses). */
  onError(res: RegistryResponse): Promise<Error>;
  /** Called with the offset each (re)connection starts at. */
  onConnect?(offset: number): void;
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/**
 * The bytes of a GET from `offset`, reconnecting with `Range` after a broken
 * connection. A registry that ignores `Range` (200 instead of 206) is read from
 * the start and the first `offset` bytes are dropped.
 */
export async function* resumableBody(transport: Transport, req: RegistryRequest, options: ResumableOptions): AsyncGenerator<Uint8Array> {
  let pos = options.offset ?? 0;
  const size = options.size;
  let resumes = 0;
  for (;;) {
    const headers = { ...req.headers };
    if (pos > 0) headers.range = `bytes=${pos}-`;
    options.onConnect?.(pos);
    let res: RegistryResponse;
    try {
      res = await transport({ ...req, headers });
    } catch (err) {
      if (req.signal?.aborted || !isTransientNetworkError(err) || resumes++ >= (options.maxResumes ?? 5)) throw err;
      continue;
    }
    if (pos > 0 && res.status === 416 && size !== undefined && pos === size) {
      await discard(res);
      return;
    }
    if (res.status !== 200 && res.status !== 206) throw await options.onError(res);
    let skip = 0;
    if (res.status === 206) {
      const m = CONTENT_RANGE.exec(header(res, "content-range") ?? "");
      if (!m || Number(m[1]) !== pos) {
        await discard(res);
        throw protocolError(`${req.url.pathname}: asked for bytes ${pos}-, got Content-Range ${JSON.stringify(header(res, "content-range"))}`);
      }
    } else {
      skip = pos;
    }
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        let c: Uint8Array = chunk;
        if (skip > 0) {
          if (c.length <= skip) {
            skip -= c.length;
            continue;
          }
          c = c.subarray(skip);
          skip = 0;
        }
        pos += c.length;
        if (size !== undefined && pos > size) {
          res.body.destroy();
          throw new DataIntegrityError(`${req.url.pathname}: body longer than the expected ${size} bytes`, {
            code: "ERR_SIZE_MISMATCH",
            details: { expected: size },
          });
        }
        yield c;
      }
    } catch (err) {
      if (req.signal?.aborted || !isTransientNetworkError(err) || resumes++ >= (options.maxResumes ?? 5)) throw err;
      continue;
    }
    if (size === undefined || pos === size) return;
    // the body ended early without an error: a cut connection; resume
    if (resumes++ >= (options.maxResumes ?? 5)) {
      throw new DataIntegrityError(`${req.url.pathname}: body ended at ${pos} of ${size} bytes`, {
        code: "ERR_SIZE_MISMATCH",
        details: { expected: size, got: pos, registryCode: REGISTRY_ERROR_CODES.PROTOCOL },
      });
    }
  }
}
