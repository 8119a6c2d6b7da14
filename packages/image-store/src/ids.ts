/**
 * Image ID arguments: parsing `sha256:<hex>` / bare hex IDs and ID prefixes.
 * @module
 */
import { BerthError, type Digest, InvalidArgumentError, parseDigest } from "@berth/digest";
import { ImageStoreErrorCode } from "./errors.js";

/** A full image ID without its algorithm: 64 hex. @internal */
export const FULL_HEX_RE = /^[a-f0-9]{64}$/;
/** A (possibly short) image ID prefix, with or without `sha256:`. @internal */
export const HEX_PREFIX_RE = /^(?:sha256:)?[a-f0-9]{1,64}$/;

/** Validate an image ID argument: `sha256:<64 hex>` or 64 hex. Anything else (paths too) is a typed error. */
export function parseImageId(id: string, what = "image ID"): Digest {
  if (typeof id === "string" && FULL_HEX_RE.test(id)) return `sha256:${id}` as Digest;
  let d: Digest;
  try {
    d = parseDigest(id);
  } catch (err) {
    if (err instanceof BerthError) {
      throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(String(id).slice(0, 100))}: ${err.message}`, {
        code: (err as BerthError).code,
        cause: err,
        details: { id },
      });
    }
    throw err;
  }
  if (!d.startsWith("sha256:")) {
    throw new InvalidArgumentError(`invalid ${what} ${d}: image IDs are sha256 digests`, { code: ImageStoreErrorCode.DIGEST_UNSUPPORTED });
  }
  return d;
}

/** Strings sorted (IDs, references). @internal */
export const sorted = <T extends string>(xs: Iterable<T>): T[] => [...xs].sort();
