import { DigestFormatError, DigestLengthError, UnsupportedAlgorithmError } from "./errors.js";

declare const digestBrand: unique symbol;

/**
 * A validated OCI content digest such as `sha256:e3b0c442…`.
 *
 * A branded string: only {@link parseDigest}, the hash functions and
 * {@link digestFromHex} make one, so a value of this type has passed
 * validation and is safe to turn into a file path.
 */
export type Digest = string & { readonly [digestBrand]: true };

/** Algorithms berth recognises, with the length and alphabet of their encoded part. */
export const ALGORITHMS = {
  sha256: { hexLength: 64 },
  sha512: { hexLength: 128 },
} as const;

/** Name of an algorithm berth recognises. */
export type Algorithm = keyof typeof ALGORITHMS;

// OCI image-spec descriptor grammar:
//   digest    ::= algorithm ":" encoded
//   algorithm ::= algorithm-component (algorithm-separator algorithm-component)*
//   algorithm-component ::= [a-z0-9]+
//   algorithm-separator ::= [+._-]
//   encoded   ::= [a-zA-Z0-9=_-]+
const ALGORITHM_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*$/;
const ENCODED_RE = /^[a-zA-Z0-9=_-]+$/;
const HEX_RE = /^[a-f0-9]+$/;
const SHA256_RE = /^sha256:[a-f0-9]{64}$/;

function show(s: string): string {
  return JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s);
}

/**
 * Validate `input` against the OCI digest grammar and return it as a {@link Digest}.
 *
 * @throws DigestFormatError (`ERR_DIGEST_FORMAT`) when the string is not `algorithm:encoded`
 *   or the encoded part has characters its algorithm does not allow.
 * @throws UnsupportedAlgorithmError (`ERR_DIGEST_UNSUPPORTED`) for a well-formed but unknown algorithm.
 * @throws DigestLengthError (`ERR_DIGEST_LENGTH`) when the encoded part has the wrong length.
 */
export function parseDigest(input: string): Digest {
  if (typeof input !== "string") {
    throw new DigestFormatError(`invalid digest: expected a string, got ${typeof input}`);
  }
  // Fast path: the overwhelmingly common case.
  if (input.length === 71 && SHA256_RE.test(input)) return input as Digest;
  const colon = input.indexOf(":");
  if (colon <= 0 || colon === input.length - 1) {
    throw new DigestFormatError(`invalid digest ${show(input)}: expected "algorithm:encoded"`, {
      details: { digest: input },
    });
  }
  const algorithm = input.slice(0, colon);
  const encoded = input.slice(colon + 1);
  if (!ALGORITHM_RE.test(algorithm) || !ENCODED_RE.test(encoded)) {
    throw new DigestFormatError(`invalid digest ${show(input)}: does not match the OCI digest grammar`, {
      details: { digest: input },
    });
  }
  const spec = (ALGORITHMS as Record<string, { hexLength: number }>)[algorithm];
  if (spec === undefined || !Object.hasOwn(ALGORITHMS, algorithm)) {
    throw new UnsupportedAlgorithmError(`invalid digest ${show(input)}: unsupported algorithm ${show(algorithm)}`, {
      details: { digest: input, algorithm },
    });
  }
  if (encoded.length !== spec.hexLength) {
    throw new DigestLengthError(
      `invalid digest ${show(input)}: ${algorithm} needs ${spec.hexLength} hex characters, got ${encoded.length}`,
      { details: { digest: input, algorithm } },
    );
  }
  if (!HEX_RE.test(encoded)) {
    throw new DigestFormatError(`invalid digest ${show(input)}: ${algorithm} must be lowercase hex`, {
      details: { digest: input },
    });
  }
  return input as Digest;
}

/** True when `input` is a valid digest (never throws). */
export function isDigest(input: unknown): input is Digest {
  if (typeof input !== "string") return false;
  try {
    parseDigest(input);
    return true;
  } catch {
    return false;
  }
}

/** Fast check used on hot paths: a well-formed `sha256:<64 lowercase hex>`. */
export function isSha256Digest(input: unknown): input is Digest {
  return typeof input === "string" && input.length === 71 && SHA256_RE.test(input);
}

/** The algorithm part of a digest (`sha256`). */
export function digestAlgorithm(d: Digest): Algorithm {
  return d.slice(0, d.indexOf(":")) as Algorithm;
}

/** The encoded (hex) part of a digest. */
export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(":") + 1);
}

/** Build a digest from an algorithm and hex string, validating both. */
export function digestFromHex(hex: string, algorithm: Algorithm = "sha256"): Digest {
  return parseDigest(`${algorithm}:${hex}`);
}

/**
 * The 12-hex short ID `docker images` shows for an image or layer digest.
 * Accepts a digest or a bare hex string.
 */
export function shortId(d: string): string {
  const colon = d.indexOf(":");
  return (colon >= 0 ? d.slice(colon + 1) : d).slice(0, 12);
}

const HEX_CHARS = "0123456789abcdef";
const HEX_TABLE: string[] = Array.from({ length: 256 }, (_, i) => HEX_CHARS[i >> 4]! + HEX_CHARS[i & 15]!);

/** Lowercase hex of raw bytes. */
export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX_TABLE[bytes[i]!]!;
  return out;
}
