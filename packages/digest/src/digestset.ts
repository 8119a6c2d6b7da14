import { type Digest, parseDigest } from "./digest.js";
import { AmbiguousPrefixError, DigestFormatError, NotFoundError } from "./errors.js";

const HEX_PREFIX_RE = /^[a-f0-9]+$/;
const BUCKET_CHARS = 4; // 16^4 = 65,536 buckets: ~15 entries each at 1M digests

/**
 * A set of digests with lookup by unique prefix, with the semantics of moby's
 * `digestset` (used for `docker images` short IDs):
 * `lookup("sha256:ab12")` or `lookup("ab12")` returns the only digest that
 * starts with it, an exact full digest always wins, an ambiguous prefix throws
 * {@link AmbiguousPrefixError} (`ERR_AMBIGUOUS_PREFIX`) and no match throws
 * {@link NotFoundError} (`ERR_NOT_FOUND`).
 *
 * Entries are bucketed by their first four hex characters, so add, remove and
 * lookups of prefixes of four or more characters cost O(1) at a million
 * entries. Shorter prefixes scan the buckets they cover.
 */
export class DigestSet {
  readonly #all = new Set<string>();
  readonly #buckets = new Map<string, string[]>();

  constructor(digests?: Iterable<string>) {
    if (digests) for (const d of digests) this.add(d);
  }

  /** Number of digests in the set. */
  get size(): number {
    return this.#all.size;
  }

  /** Add a digest (validated). Adding one twice is a no-op. */
  add(digest: string): Digest {
    const d = parseDigest(digest);
    if (this.#all.has(d)) return d;
    this.#all.add(d);
    const key = this.#bucketKey(d);
    const bucket = this.#buckets.get(key);
    if (bucket) bucket.push(d);
    else this.#buckets.set(key, [d]);
    return d;
  }

  /** Remove a digest; returns whether it was present. */
  remove(digest: string): boolean {
    if (!this.#all.delete(digest)) return false;
    const key = this.#bucketKey(digest);
    const bucket = this.#buckets.get(key);
    if (bucket) {
      const i = bucket.indexOf(digest);
      if (i >= 0) {
        bucket[i] = bucket[bucket.length - 1]!;
        bucket.pop();
      }
      if (bucket.length === 0) this.#buckets.delete(key);
    }
    return true;
  }

  /** Whether the exact digest is in the set. */
  has(digest: string): boolean {
    return this.#all.has(digest);
  }

  /** Every digest in the set (insertion order). */
  values(): IterableIterator<Digest> {
    return this.#all.values() as IterableIterator<Digest>;
  }

  [Symbol.iterator](): IterableIterator<Digest> {
    return this.values();
  }

  /**
   * The one digest that `prefix` identifies. `prefix` is a full digest, an
   * `algorithm:hexprefix`, or a bare hex prefix.
   */
  lookup(prefix: string): Digest {
    let algorithm = "sha256";
    let hex = prefix;
    const colon = prefix.indexOf(":");
    if (colon >= 0) {
      algorithm = prefix.slice(0, colon);
      hex = prefix.slice(colon + 1);
    }
    if (hex.length === 0 || !HEX_PREFIX_RE.test(hex) || (colon >= 0 && algorithm !== "sha256")) {
      throw new DigestFormatError(`invalid digest prefix ${JSON.stringify(prefix)}`, { details: { prefix } });
    }
    const full = `${algorithm}:${hex}`;
    if (this.#all.has(full)) return full as Digest;
    let found: string | undefined;
    const visit = (bucket: string[] | undefined): void => {
      if (!bucket) return;
      for (const d of bucket) {
        if (d.startsWith(full)) {
          if (found !== undefined && found !== d) {
            throw new AmbiguousPrefixError(`ambiguous digest prefix ${JSON.stringify(prefix)}: matches more than one`, {
              details: { prefix },
            });
          }
          found = d;
        }
      }
    };
    if (hex.length >= BUCKET_CHARS) {
      visit(this.#buckets.get(hex.slice(0, BUCKET_CHARS)));
    } else {
      for (const [key, bucket] of this.#buckets) if (key.startsWith(hex)) visit(bucket);
    }
    if (found === undefined) {
      throw new NotFoundError(`no digest matches ${JSON.stringify(prefix)}`, { details: { prefix } });
    }
    return found as Digest;
  }

  #bucketKey(d: string): string {
    const colon = d.indexOf(":");
    return d.slice(colon + 1, colon + 1 + BUCKET_CHARS);
  }
}
