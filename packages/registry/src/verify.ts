/**
 * Every blob is checked as it streams: its bytes are hashed on the way and
 * the stream fails at its end (before the consumer commits anything) when the
 * digest or the size differs from the descriptor.
 * @module
 */
import { type Digest, DigestMismatchError, type Sha256Hash, SizeMismatchError, sha256 } from "@berth/digest";

/** What a blob is expected to be. */
export interface BlobDescriptor {
  digest: Digest;
  size: number;
}

/** Options of {@link verifyStream}. */
export interface VerifyOptions {
  /** A hash already fed with the bytes before this stream (a resumed transfer); default a fresh one. */
  hasher?: Sha256Hash;
  /** Bytes already counted by `hasher`. Default 0. */
  offset?: number;
  /** Called with the running byte count (offset included) after each chunk. */
  onProgress?(bytes: number): void;
  /** What the blob is, for messages (`blob`, `manifest`). */
  what?: string;
}

/**
 * Pass `source` through, hashing it; throws SizeMismatchError
 * (`ERR_SIZE_MISMATCH`) as soon as it runs past `desc.size` and, at its end,
 * when it is short, or DigestMismatchError (`ERR_DIGEST_MISMATCH`). The
 * digest is checked before the chunk that completes the size is passed on,
 * so a consumer (an upload) never receives the whole of a wrong blob: a
 * registry cannot answer first with its own verdict.
 */
export async function* verifyStream(source: AsyncIterable<Uint8Array>, desc: BlobDescriptor, options: VerifyOptions = {}): AsyncGenerator<Uint8Array> {
  const hasher = options.hasher ?? sha256.create();
  let n = options.offset ?? 0;
  const what = options.what ?? "blob";
  let checked = false;
  const check = () => {
    checked = true;
    const got = hasher.digest();
    if (got !== desc.digest) {
      throw new DigestMismatchError(`${what} ${desc.digest}: content hashes to ${got}`, { details: { digest: desc.digest, actual: got } });
    }
  };
  try {
    for await (const chunk of source) {
      n += chunk.length;
      if (n > desc.size) {
        throw new SizeMismatchError(`${what} ${desc.digest}: more than the expected ${desc.size} bytes`, { details: { digest: desc.digest, expected: desc.size } });
      }
      hasher.update(chunk);
      if (n === desc.size && !checked) check();
      options.onProgress?.(n);
      yield chunk;
    }
    if (n !== desc.size) {
      throw new SizeMismatchError(`${what} ${desc.digest}: ${n} bytes, expected ${desc.size}`, { details: { digest: desc.digest, expected: desc.size, actual: n } });
    }
    // a blob that ended where it started (empty, or a resumed one already whole) was not checked above
    if (!checked) check();
  } finally {
    hasher.destroy();
  }
}

/**
 * Check a whole (small) document against a descriptor.
 * @throws SizeMismatchError, DigestMismatchError
 */
export function verifyBytes(bytes: Uint8Array, desc: { digest: Digest; size?: number }, what = "blob"): void {
  if (desc.size !== undefined && bytes.length !== desc.size) {
    throw new SizeMismatchError(`${what} ${desc.digest}: ${bytes.length} bytes, expected ${desc.size}`, { details: { digest: desc.digest } });
  }
  const got = sha256(bytes);
  if (got !== desc.digest) throw new DigestMismatchError(`${what} ${desc.digest}: content hashes to ${got}`, { details: { digest: desc.digest, actual: got } });
}
